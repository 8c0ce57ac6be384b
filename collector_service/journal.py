"""An append-only journal of write operations on local disk, in BSON.

Every operation bound for MongoDB is appended here the moment it is created, before it is
written to the database; a segment is deleted only after all of its operations are in
MongoDB. So a crash (even ``kill -9`` mid-flush), a MongoDB outage of any length, or a shutdown
with the database down loses nothing: the next flush, or the next start, replays the segments
still on disk, and the unique indexes turn any replay into a no-op. Memory stays bounded while
MongoDB is away because pending operations live on disk, not in a buffer.

BSON round-trips datetimes and 64-bit ints exactly; each document carries its own length, so a
torn write at the tail of a segment (a crash mid-append) is detected and cut off at start.

Power loss: appends reach the disk itself (``fsync``) at most ``fsync_interval`` seconds after
they are made (0: before :meth:`Journal.append` returns), and always when a segment is sealed for
writing to MongoDB. A corrupt document inside a segment (a bad sector, a stray write) does not
stop the collector: it is cut out of the segment with an error in the log, its bytes are kept in
``<segment>.corrupt-<offset>`` for inspection, and every document after it is kept (each one
starts with the same bytes, ``kind`` being its first key, which is how the next is found).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.errors import BSONError

log = logging.getLogger(__name__)

_PREFIX = "segment-"
_SUFFIX = ".bson"
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
_OP_START = b"\x02kind\x00"
"""What every operation's document holds after its 4-byte length: ``kind``, a string, first."""


@dataclass
class Scan:
    """What a segment's bytes hold: its operations (and the bytes of each), the corrupt spans
    ``(offset, bytes)`` between them, and where a torn tail begins (None: it ends whole)."""

    ops: list[dict[str, Any]]
    raw: list[bytes]
    corrupt: list[tuple[int, bytes]]
    torn_at: int | None


def _document(data: bytes, offset: int) -> tuple[dict[str, Any], int] | None:
    """The operation whose document starts at ``offset`` and its size, or None if none does."""
    if len(data) - offset < 5 or not data.startswith(_OP_START, offset + 4):
        return None
    (size,) = struct.unpack_from("<i", data, offset)
    if size < 5 or offset + size > len(data):
        return None
    try:
        op = bson.decode(data[offset : offset + size], codec_options=_CODEC)
    except (BSONError, ValueError, OverflowError):
        return None
    return (op, size) if "doc" in op else None


def scan(data: bytes) -> Scan:
    """Split a segment's bytes into operations, corrupt spans and a torn tail."""
    found = Scan([], [], [], None)
    offset = 0
    while offset < len(data):
        whole = _document(data, offset)
        if whole is not None:
            found.ops.append(whole[0])
            found.raw.append(data[offset : offset + whole[1]])
            offset += whole[1]
            continue
        after = data.find(_OP_START, offset + 5)
        while after != -1 and _document(data, after - 4) is None:
            after = data.find(_OP_START, after + 1)
        if after == -1:  # nothing whole after it: a crash mid-append
            found.torn_at = offset
            break
        found.corrupt.append((offset, data[offset : after - 4]))
        offset = after - 4
    return found


class Journal:
    """Segments ``segment-<n>.bson`` in one folder; one of them is open for appending."""

    def __init__(self, folder: Path, fsync_interval: float = 1.0) -> None:
        self.folder = folder
        self.fsync_interval = fsync_interval
        folder.mkdir(parents=True, exist_ok=True)
        existing = self._numbers()
        self._next = (existing[-1] + 1) if existing else 1
        self._current: Path | None = None
        self._file: Any = None
        self._synced_at = -math.inf  # monotonic time of the last fsync
        self._dirty = False  # appended since the last fsync
        self.ops_in_current = 0
        self.corrupt_records = 0
        for number in existing:
            self._repair(self._path(number))

    def _numbers(self) -> list[int]:
        numbers = []
        for path in self.folder.glob(f"{_PREFIX}*{_SUFFIX}"):
            stem = path.name[len(_PREFIX) : -len(_SUFFIX)]
            if stem.isdigit():
                numbers.append(int(stem))
        return sorted(numbers)

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
            _fsync_folder(self.folder)  # the new segment's name survives a power loss too
        self._file.write(b"".join(bson.encode(op) for op in ops))
        self._file.flush()
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
        return [self._path(n) for n in self._numbers() if self._path(n) != self._current]

    def _repair(self, path: Path) -> None:
        """Cut a torn tail (a crash mid-append) and corrupt documents out of a segment left by
        an earlier run; the corrupt bytes go to a side file, loudly, and the rest is kept."""
        data = path.read_bytes()
        found = scan(data)
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
        found = scan(path.read_bytes())
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
