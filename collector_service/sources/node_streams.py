"""The node-file source's reading state of each stream: where it is read and applied up to, the
blocks and lines it dropped as written twice, what /healthz says about it, and the
``node_checkpoints`` document a restart resumes it from.

A chunk's lines are queued (``pending``) and applied in block order by the reader
(:mod:`collector_service.sources.node`); the checkpoint of a stream is the end of the last line
applied from each of its two newest files (``done``), never the end of what was only read.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector_service.events.node_lines import Line, Scanner
from collector_service.sources.node_files import Position, Stream, Tailer, file_order

RECENT_LINES = 200_000
"""Tracked lines remembered (as hashes) in the hourly layout, to drop a line the node writes twice:
one event per line carries no block number, and a partial fill applied twice is two updates."""

@dataclass
class StreamState:
    """One stream being read, and what /healthz and /metrics say about it."""

    stream: Stream
    tailer: Tailer | None
    scanner: Scanner
    last_block: int | None = None
    floor: int | None = None  # blocks at or below this were done before the restart
    recent: dict[int, None] = field(default_factory=dict)
    last_local_time: datetime | None = None
    last_block_time: datetime | None = None
    gap_since: datetime | None = None  # the time of the last block before the latest gap
    last_read_at: float = field(default_factory=time.monotonic)
    resumed_at: float = 0.0  # when a chunk was last read after a pause (see node.MERGE_WAIT_S)
    gaps: int = 0
    blocks_missing: int = 0
    blocks_repeated: int = 0
    lines_repeated: int = 0  # hourly layout: tracked lines written twice, dropped
    files_missing: int = 0  # files deleted (pruned) before they were read out
    seen: dict[bytes, None] = field(default_factory=dict)  # hourly layout: hashes of recent tracked lines
    bytes_read: int = 0
    bad_events: int = 0
    error: str | None = None  # why the stream cannot be read now (a truncated file, a line without end)
    pending: deque[tuple[Path, Line]] = field(default_factory=deque)  # read, not applied yet
    read_block: int = -1  # the highest block read
    read_time: bytes | None = None  # hourly statuses: the ``time`` of the last line read (its block)
    done: dict[Path, int] = field(default_factory=dict)  # per file, the offset after the last line applied
    read_to: Position | None = None  # the end of the last chunk read and queued (not a late append)

    def position(self) -> tuple[Position | None, Position | None]:
        return (None, None) if self.tailer is None else (self.tailer.current, self.tailer.previous)

    def start_at(self, tailer: Tailer | None) -> None:
        """Read with ``tailer``; what it has not read yet counts as not applied."""
        self.tailer = tailer
        if tailer is not None:
            self.read_to = tailer.current
            for position in (tailer.previous, tailer.current):
                if position is not None:
                    self.done[position.path] = position.offset

    def first_time(self, raw: bytes) -> bool:
        """Whether a tracked line (hourly layout) is new; remembers it. Byte for byte the same
        line is the same event (one status of one oid at one time, or one fill's tid), so a
        repeat is the node writing it again after a restart, never a second event."""
        key = hashlib.blake2b(raw, digest_size=16).digest()
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > RECENT_LINES:
            del self.seen[next(iter(self.seen))]
        return True

    def applied_through(self, end: Position) -> bool:
        """Whether every line of the stream up to ``end`` was read and applied."""
        limit = (file_order(end.path), end.offset)
        return (
            self.read_to is not None
            and (file_order(self.read_to.path), self.read_to.offset) >= limit
            and not any((file_order(path), line.end) <= limit for path, line in self.pending)
        )

    def applied(self, path: Path, line: Line) -> None:
        """A line was applied: it is behind the checkpoint from now on."""
        self.done[path] = line.end
        if len(self.done) > 2:  # the two newest files (the hour and the one before) are enough
            waiting = {p for p, _ in self.pending}
            for old in sorted(self.done, key=file_order)[:-2]:
                if old not in waiting:
                    del self.done[old]


def checkpoint_doc(state: StreamState, data_dir: Path) -> dict[str, Any]:
    """The ``node_checkpoints`` document of a stream: the newest file a line was applied from
    and the one before (still read for late appends), each at the end of its last applied line."""
    files = sorted(state.done, key=file_order)
    current, previous = files[-1], (files[-2] if len(files) > 1 else None)
    return {
        "_id": state.stream.kind,
        "layout": "by_block" if state.stream.by_block else "hourly",
        "path": str(current.relative_to(data_dir)),
        "offset": state.done[current],
        "previousPath": str(previous.relative_to(data_dir)) if previous else None,
        "previousOffset": state.done[previous] if previous else None,
        "blockNumber": state.last_block,
        "blockTime": state.last_block_time,
        "updatedAt": datetime.now(UTC),
    }


_EVENT_TIME = re.compile(rb'^\{"time":"([^"]+)"')


def event_time(line: bytes) -> bytes | None:
    """The ``time`` of an hourly status line (its first key, as the node writes it), unparsed."""
    found = _EVENT_TIME.match(line)
    return found.group(1) if found else None
