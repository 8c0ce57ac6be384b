"""An append-only journal of write operations on local disk, in msgpack.

Every operation bound for MongoDB is appended here the moment it is created, before it is
written to the database; a segment is deleted only after all of its operations are in
MongoDB. So a crash (even ``kill -9`` mid-flush), a MongoDB outage of any length, or a shutdown
with the database down loses nothing: the next flush, or the next start, replays the segments
still on disk, and the unique indexes turn any replay into a no-op. Memory stays bounded while
MongoDB is away because pending operations live on disk, not in a buffer.

Each append is one record: the length of its payload (4 bytes, little-endian), a 4-byte marker,
the payload's CRC-32, then the payload, its operations as one msgpack array. msgpack round-trips
64-bit ints and aware datetimes exactly (every datetime the collector makes is aware UTC; a naive
one would come back as text) and encodes about ten times faster than BSON, which matters because
every changed frame is journaled on the hot path. A torn write at the tail of a segment (a crash
mid-append) is detected by its length and cut off at start, so an append is replayed all or
nothing. Segments left by versions that journaled in BSON (one document per operation,
``.bson``) are still repaired, read and replayed.

Power loss: appends reach the disk itself (``fsync``) at most ``fsync_interval`` seconds after
they are made (0: before :meth:`Journal.append` returns), and always when a segment is sealed for
writing to MongoDB. A corrupt record inside a segment (a bad sector, a stray write: its CRC or its
msgpack does not check) does not stop the collector: it is cut out of the segment with an error in
the log, its bytes are kept in ``<segment>.corrupt-<offset>`` for inspection, and every record
after it is kept (each one carries the marker after its length, which is how the next is found).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
import msgspec
from bson.codec_options import CodecOptions
from bson.errors import BSONError

log = logging.getLogger(__name__)

_PREFIX = "segment-"
_SUFFIX = ".msgpack"
_BSON_SUFFIX = ".bson"  # segments of earlier versions: one BSON document per operation
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
_HEADER = struct.Struct("<I4sI")  # payload length, marker, CRC-32 of the payload
_MARKER = b"\xc1owj"  # 0xc1 is a byte msgpack never uses as a type
_BSON_MARKER = b"\x02kind\x00"
"""What every BSON operation's document holds after its 4-byte length: ``kind``, a string, first."""
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[dict[str, Any]]).decode

Ops = list[dict[str, Any]]


def record(ops: Sequence[Mapping[str, Any]]) -> bytes:
    """One append's bytes on disk."""
    payload = _encode(ops)
    return _HEADER.pack(len(payload), _MARKER, zlib.crc32(payload)) + payload


def _msgpack_record(data: bytes, offset: int) -> tuple[Ops, int] | None:
    """The operations of the record that starts at ``offset`` and its size, or None if none does."""
    if len(data) - offset < _HEADER.size:
        return None
    size, marker, crc = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    if marker != _MARKER or start + size > len(data):
        return None
    payload = memoryview(data)[start : start + size]
    if zlib.crc32(payload) != crc:
        return None
    try:
        return _decode(payload), _HEADER.size + size
    except msgspec.DecodeError:
        return None


def _bson_document(data: bytes, offset: int) -> tuple[Ops, int] | None:
    if len(data) - offset < 5 or not data.startswith(_BSON_MARKER, offset + 4):
        return None
    (size,) = struct.unpack_from("<i", data, offset)
    if size < 5 or offset + size > len(data):
        return None
    try:
        op = bson.decode(data[offset : offset + size], codec_options=_CODEC)
    except (BSONError, ValueError, OverflowError):
        return None
    return ([op], size) if "doc" in op else None


@dataclass
class Scan:
    """What a segment's bytes hold: its operations, the bytes of each record, the corrupt spans
    ``(offset, bytes)`` between them, and where a torn tail begins (None: it ends whole)."""

    ops: Ops
    raw: list[bytes]
    corrupt: list[tuple[int, bytes]]
    torn_at: int | None


def scan(data: bytes, bson_segment: bool = False) -> Scan:
    """Split a segment's bytes into operations, corrupt spans and a torn tail. Both formats put a
    marker 4 bytes into each record (after its length): a record that does not check is skipped up
    to the next marker that starts one that does."""
    read, marker = (_bson_document, _BSON_MARKER) if bson_segment else (_msgpack_record, _MARKER)
    found = Scan([], [], [], None)
    offset = 0
    while offset < len(data):
        whole = read(data, offset)
        if whole is not None:
            found.ops.extend(whole[0])
            found.raw.append(data[offset : offset + whole[1]])
            offset += whole[1]
            continue
        after = data.find(marker, offset + 5)
        while after != -1 and read(data, after - 4) is None:
            after = data.find(marker, after + 1)
        if after == -1:  # nothing whole after it: a crash mid-append
            found.torn_at = offset
            break
        found.corrupt.append((offset, data[offset : after - 4]))
        offset = after - 4
    return found


class Journal:
    """Segments ``segment-<n>.msgpack`` in one folder; one of them is open for appending."""

    def __init__(self, folder: Path, fsync_interval: float = 1.0) -> None:
        self.folder = folder
        self.fsync_interval = fsync_interval
        folder.mkdir(parents=True, exist_ok=True)
        existing = self._segments()
        self._next = (max(existing) + 1) if existing else 1
        self._current: Path | None = None
        self._file: Any = None
        self._synced_at = -math.inf  # monotonic time of the last fsync
        self._dirty = False  # appended since the last fsync
        self.ops_in_current = 0
        self.corrupt_records = 0
        for path in existing.values():
            self._repair(path)

    def _segments(self) -> dict[int, Path]:
        """Every segment on disk by number, oldest first (this version's and earlier BSON ones)."""
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
            # unbuffered: an append is one write system call, nothing is held back in the process
            self._file = open(self._current, "ab", buffering=0)  # noqa: SIM115 - kept open across appends
            _fsync_folder(self.folder)  # the new segment's name survives a power loss too
        data = record(ops)
        written = self._file.write(data)
        while written < len(data):  # a short write (a nearly full disk): the rest, or the error that stops it
            written += self._file.write(memoryview(data)[written:])
        self.ops_in_current += len(ops)
        self._dirty = True
        if time.monotonic() - self._synced_at >= self.fsync_interval:
            self.sync()

    def sync(self) -> None:
        """Put what was appended to the open segment on the disk itself (``fsync``)."""
        if self._file is not None and self._dirty:
            os.fsync(self._file.fileno())
            self._dirty = False
            self._synced_at = time.monotonic()

    def rotate(self) -> None:
        """Close the segment being appended to, so that it can be written out and deleted."""
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
            self._current = None
            self.ops_in_current = 0

    def sealed(self) -> list[Path]:
        """Closed segments, oldest first: everything not yet known to be in MongoDB."""
        return [path for path in self._segments().values() if path != self._current]

    def _repair(self, path: Path) -> None:
        """Cut a torn tail (a crash mid-append) and corrupt records out of a segment left by an
        earlier run; the corrupt bytes go to a side file, loudly, and the rest is kept."""
        data = path.read_bytes()
        found = scan(data, path.suffix == _BSON_SUFFIX)
        if found.torn_at is not None:
            log.warning("event=journal_torn_tail segment=%s dropped_bytes=%d note='a crash mid-append; cut off'",
                        path.name, len(data) - found.torn_at)
        for offset, junk in found.corrupt:
            side = path.with_name(f"{path.name}.corrupt-{offset}")
            side.write_bytes(junk)
            self.corrupt_records += 1
            log.error("event=journal_corrupt segment=%s offset=%d bytes=%d kept_in=%s "
                      "note='cut out; the operations around it are kept and written'",
                      path.name, offset, len(junk), side.name)
        if found.corrupt or found.torn_at is not None:
            repaired = path.with_name(path.name + ".repair")
            with open(repaired, "wb") as handle:
                handle.write(b"".join(found.raw))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(repaired, path)

    @staticmethod
    def read(path: Path) -> Iterator[dict[str, Any]]:
        """The operations of a segment (one repaired at start, or sealed by this run)."""
        found = scan(path.read_bytes(), path.suffix == _BSON_SUFFIX)
        if found.corrupt or found.torn_at is not None:
            log.error("event=journal_damaged_while_running segment=%s corrupt_spans=%d torn=%s",
                      path.name, len(found.corrupt), found.torn_at is not None)
        yield from found.ops

    @staticmethod
    def remove(path: Path) -> None:
        """Delete a segment whose operations are all in MongoDB."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self.rotate()


def _fsync_folder(folder: Path) -> None:
    """Make a file created in ``folder`` (its name) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
