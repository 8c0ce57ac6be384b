"""An append-only journal of write operations on local disk, in msgpack.

Every operation bound for MongoDB is appended here the moment it is created, before it is
written to the database; a segment is deleted only after all of its operations are in
MongoDB. So a crash (even ``kill -9`` mid-flush), a MongoDB outage of any length, or a shutdown
with the database down loses nothing: the next flush, or the next start, replays the segments
still on disk, and the unique indexes turn any replay into a no-op. Memory stays bounded while
MongoDB is away because pending operations live on disk, not in a buffer.

Each append is one record: its length (4 bytes, little-endian), then its operations as one
msgpack array. msgpack round-trips 64-bit ints and aware datetimes exactly (every datetime the
collector makes is aware UTC; a naive one would come back as text) and encodes about ten times
faster than BSON, which matters because every changed frame is journaled on the hot path. A torn
write at the tail of a segment (a crash mid-append) is detected by its length and dropped whole,
so an append is replayed all or nothing. Segments left by versions that journaled in BSON (one
document per operation, ``.bson``) are still read and replayed.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import bson
import msgspec
from bson.codec_options import CodecOptions

log = logging.getLogger(__name__)

_PREFIX = "segment-"
_SUFFIX = ".msgpack"
_BSON_SUFFIX = ".bson"  # segments of earlier versions: one BSON document per operation
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
_RECORD = struct.Struct("<I")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[dict[str, Any]]).decode


class Journal:
    """Segments ``segment-<n>.msgpack`` in one folder; one of them is open for appending."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        existing = list(self._segments())
        self._next = (existing[-1] + 1) if existing else 1
        self._current: Path | None = None
        self._file: Any = None
        self.ops_in_current = 0

    def _segments(self) -> dict[int, Path]:
        """Every segment on disk by number (this version's and earlier BSON ones)."""
        found = {}
        for suffix in (_BSON_SUFFIX, _SUFFIX):
            for path in self.folder.glob(f"{_PREFIX}*{suffix}"):
                stem = path.name[len(_PREFIX) : -len(suffix)]
                if stem.isdigit():
                    found[int(stem)] = path
        return dict(sorted(found.items()))

    def _path(self, number: int) -> Path:
        return self.folder / f"{_PREFIX}{number:010d}{_SUFFIX}"

    def append(self, ops: Sequence[Mapping[str, Any]]) -> None:
        """Append operations and hand them to the OS (they survive a process crash)."""
        if not ops:
            return
        if self._file is None:
            self._current = self._path(self._next)
            self._next += 1
            self._file = open(self._current, "ab")  # noqa: SIM115 - kept open across appends
        record = _encode(ops)
        self._file.write(_RECORD.pack(len(record)) + record)
        self._file.flush()
        self.ops_in_current += len(ops)

    def rotate(self) -> None:
        """Close the segment being appended to, so that it can be written out and deleted."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._current = None
            self.ops_in_current = 0

    def sealed(self) -> list[Path]:
        """Closed segments, oldest first: everything not yet known to be in MongoDB."""
        return [path for path in self._segments().values() if path != self._current]

    @staticmethod
    def read(path: Path) -> Iterator[dict[str, Any]]:
        """The operations of a segment; a torn record at the end is logged and skipped."""
        data = path.read_bytes()
        offset = 0
        bson_segment = path.suffix == _BSON_SUFFIX
        while offset < len(data):
            if bson_segment:
                if len(data) - offset < 5:
                    break
                (size,) = struct.unpack_from("<i", data, offset)
                if size < 5 or offset + size > len(data):
                    break
                yield bson.decode(data[offset : offset + size], codec_options=_CODEC)
                offset += size
                continue
            if len(data) - offset < _RECORD.size:
                break
            (size,) = _RECORD.unpack_from(data, offset)
            start = offset + _RECORD.size
            if start + size > len(data):
                break
            yield from _decode(memoryview(data)[start : start + size])
            offset = start + size
        if offset < len(data):
            log.warning("event=journal_torn_tail segment=%s dropped_bytes=%d", path.name, len(data) - offset)

    @staticmethod
    def remove(path: Path) -> None:
        """Delete a segment whose operations are all in MongoDB."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self.rotate()
