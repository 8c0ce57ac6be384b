"""The node's output files: which stream folders exist, their hourly files in order, and a
tailer that hands out whole lines by byte offset.

The node appends JSON lines to ``<data>/<stream>[_by_block]/hourly/<YYYYMMDD>/<H>`` with ``H``
the hour *not* zero-padded, so files sort by ``(date, int(hour))``, never as strings
(NODE.md §1.2). A line can be half-written when we read it: the tailer only ever moves its
offset past a newline, and reads the unterminated rest again once it is complete. After the next
hour's file appears the previous one may still get a late append (NODE.md §1.3): it is watched
for :data:`ROTATION_GRACE_S` more and whatever it grows by is read too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

log = logging.getLogger(__name__)

Kind = Literal["order_statuses", "fills", "twap_statuses"]
KINDS: tuple[Kind, ...] = ("order_statuses", "fills", "twap_statuses")
FOLDERS: dict[Kind, str] = {
    "order_statuses": "node_order_statuses",
    "fills": "node_fills",
    "twap_statuses": "node_twap_statuses",
}
"""Stream folder names under the node's data folder (``--write-order-statuses``; ``--write-fills``
writes fills and TWAP statuses, SAMPLE-NOTES.md §1)."""

OPTIONAL: Kind = "twap_statuses"
"""A stream that may have no folder yet when reading starts: one event per line (hourly layout),
it is written only once a TWAP changes. Its folder is then expected in the layout of the others."""

BY_BLOCK_SUFFIX = "_by_block"
"""``--batch-by-block`` writes one whole block per line into ``<folder>_by_block``."""

ROTATION_GRACE_S = 5.0
"""How long the previous hour's file is still read after the next one appeared (one consumer used
3 s, NODE.md §6.2 suggests >= 5 s)."""

READ_SIZE = 8 << 20
"""Bytes per read; a line longer than this (misc funding lines exceed 20 MB) doubles it."""

MAX_LINE = 256 << 20
"""A line longer than this is not a node line: the reader stops with an error instead of
buffering without bound."""


class NodeFilesError(RuntimeError):
    """The node's files are not what the reader can follow; the message says what to check."""


@dataclass(frozen=True)
class Stream:
    """One stream the node writes: its kind, its folder, and whether lines are whole blocks."""

    kind: Kind
    folder: Path  # .../node_order_statuses_by_block/hourly
    by_block: bool


def find_streams(data_dir: Path, prefer_by_block: bool = True) -> dict[Kind, Stream]:
    """The streams present under the node's data folder, by kind; when a kind has both layouts,
    ``prefer_by_block`` picks one (a block per line keeps "offset after line" = "block done").
    The TWAP statuses' stream is always among them once another is (see :data:`OPTIONAL`)."""
    found: dict[Kind, Stream] = {}
    for kind in KINDS:
        one_per_line = [(False, data_dir / FOLDERS[kind] / "hourly")]
        if kind == OPTIONAL:  # the node README's own path has no ``hourly/`` (NODE.md §1.2, unverified)
            one_per_line.append((False, data_dir / FOLDERS[kind]))
        layouts = [(True, data_dir / (FOLDERS[kind] + BY_BLOCK_SUFFIX) / "hourly"), *one_per_line]
        if not prefer_by_block:
            layouts = [*one_per_line, layouts[0]]
        for by_block, folder in layouts:
            if folder.is_dir():
                found[kind] = Stream(kind, folder, by_block)
                break
    others = [stream for stream in found.values() if stream.kind != OPTIONAL]
    if not others:  # no order statuses nor fills: not a node's folder (TWAP statuses alone follow nothing)
        return {}
    if OPTIONAL not in found:
        by_block = others[0].by_block
        found[OPTIONAL] = Stream(OPTIONAL, data_dir / (FOLDERS[OPTIONAL] + BY_BLOCK_SUFFIX * by_block) / "hourly",
                                 by_block)
    return found


def hour_files(folder: Path) -> list[Path]:
    """Every hourly file of a stream, oldest first: ``YYYYMMDD`` folders, hour files sorted as
    numbers (``"10"`` comes after ``"9"``)."""
    found: list[tuple[str, int, Path]] = []
    try:
        dates = [d for d in os.scandir(folder) if d.is_dir() and len(d.name) == 8 and d.name.isdigit()]
    except FileNotFoundError:
        return []
    for date in dates:
        for entry in os.scandir(date.path):
            if entry.name.isdigit() and entry.is_file():
                found.append((date.name, int(entry.name), Path(entry.path)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [path for _, _, path in found]


def file_order(path: Path) -> tuple[str, int]:
    """Where an hour file sorts among the others."""
    return path.parent.name, int(path.name)


@dataclass
class Position:
    """A file and the byte offset just after the last complete line read from it."""

    path: Path
    offset: int


@dataclass
class Chunk:
    """Complete lines read from one file: ``data`` ends with a newline, and ``end`` is the offset
    after it; ``late`` marks lines appended to a file after the next hour's file appeared."""

    path: Path
    data: bytes
    end: int
    late: bool = False


class _Open:
    """A file being read: its handle, the offset after the last whole line, and when it last grew."""

    def __init__(self, position: Position, clock: Callable[[], float]) -> None:
        self.path = position.path
        self.offset = position.offset
        self.handle: BinaryIO | None = None
        self.clock = clock
        self.grew_at = clock()
        self.size = -1
        self.read_size = READ_SIZE

    def read(self) -> Chunk | None:
        """The complete lines after the offset, or None when there are none yet."""
        if self.handle is None:
            self.handle = open(self.path, "rb")  # noqa: SIM115 - kept open across reads
        size = os.fstat(self.handle.fileno()).st_size
        if size != self.size:
            self.size, self.grew_at = size, self.clock()
        if size < self.offset:
            raise NodeFilesError(
                f"{self.path} shrank to {size} bytes below the read offset {self.offset}: the node "
                "only appends, so the file was truncated or replaced; check the node and its pruner"
            )
        while size > self.offset:
            self.handle.seek(self.offset)
            data = self.handle.read(self.read_size)
            cut = data.rfind(b"\n") + 1
            if cut:
                self.offset += cut
                return Chunk(self.path, data[:cut], self.offset)
            if len(data) < self.read_size:
                return None  # the last line is still being written
            if self.read_size >= MAX_LINE:
                raise NodeFilesError(f"{self.path}: no line end within {MAX_LINE} bytes after offset {self.offset}")
            self.read_size *= 2
        return None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class Tailer:
    """Reads one stream's hourly files line by line, following the hour rotation.

    Positions are what a checkpoint records: :attr:`current` (the file being read) and
    :attr:`previous` (the hour before, still watched for late appends during the grace)."""

    def __init__(
        self,
        stream: Stream,
        current: Position,
        previous: Position | None = None,
        grace_s: float = ROTATION_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.grace_s = grace_s
        self.clock = clock  # seconds, for the grace (tests pass a simulated one)
        self._current = _Open(current, clock)
        self._previous = _Open(previous, clock) if previous is not None else None
        self.late_appends = 0
        self.pruned: list[Path] = []  # files deleted before they were read out, not reported yet

    @classmethod
    def start(cls, stream: Stream, where: Literal["now", "earliest"]) -> Tailer | None:
        """A tailer at the end of the newest file (``now``) or the start of the oldest one
        (``earliest``); None while the stream has no file yet."""
        files = hour_files(stream.folder)
        if not files:
            return None
        if where == "earliest":
            return cls(stream, Position(files[0], 0))
        newest = files[-1]
        return cls(stream, Position(newest, last_line_end(newest)))

    @property
    def current(self) -> Position:
        return Position(self._current.path, self._current.offset)

    @property
    def previous(self) -> Position | None:
        return None if self._previous is None else Position(self._previous.path, self._previous.offset)

    def read(self) -> Chunk | None:
        """The next complete lines of the stream, or None when nothing new is written."""
        if self._previous is not None:
            try:
                chunk = self._previous.read()
            except FileNotFoundError:  # pruned after its hour ended: its late appends were long written
                log.warning("event=node_file_missing stream=%s file=%s", self.stream.kind, self._previous.path)
                self._previous, chunk = None, None
            if chunk is not None:
                self.late_appends += 1
                log.warning(
                    "event=node_late_append stream=%s file=%s bytes=%d", self.stream.kind, chunk.path, len(chunk.data)
                )
                chunk.late = True
                return chunk
            if self._previous is not None and self.clock() - self._previous.grew_at >= self.grace_s:
                self._previous.close()
                self._previous = None
        try:
            chunk = self._current.read()
        except FileNotFoundError:
            return self._skip_pruned()
        if chunk is not None:
            return chunk
        newer = self._newer()
        if not newer:
            return None
        # the current file read to its last line end, and a newer hour exists: move on, and keep
        # watching this one for the grace (replacing an older one still watched, now read out)
        if self._previous is not None:
            self._previous.close()
        self._previous = self._current
        self._previous.grew_at = self.clock()
        self._current = _Open(Position(newer[0], 0), self.clock)
        log.info("event=node_rotation stream=%s file=%s", self.stream.kind, newer[0])
        return self._current.read()

    def _newer(self) -> list[Path]:
        """The stream's hour files after the current one, oldest first."""
        return [p for p in hour_files(self.stream.folder) if file_order(p) > file_order(self._current.path)]

    def _skip_pruned(self) -> Chunk | None:
        """The current file is gone (pruned while nobody read it): go on at the start of the next
        hour that exists (none yet: wait for the node's next file) and note the file in
        :attr:`pruned`, for the caller to report the gap and resync."""
        newer = self._newer()
        if not newer:
            return None
        log.error(
            "event=node_file_missing stream=%s file=%s offset=%d next=%s note='pruned before it was read out'",
            self.stream.kind,
            self._current.path,
            self._current.offset,
            newer[0],
        )
        self.pruned.append(self._current.path)
        self._current = _Open(Position(newer[0], 0), self.clock)
        return self._current.read()

    def close(self) -> None:
        self._current.close()
        if self._previous is not None:
            self._previous.close()


def last_line_end(path: Path) -> int:
    """The offset after the last newline of a file (0 if none): where ``now`` starts."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        at = size
        while at > 0:
            step = min(at, 1 << 20)
            handle.seek(at - step)
            block = handle.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return at - step + cut + 1
            at -= step
    return 0
