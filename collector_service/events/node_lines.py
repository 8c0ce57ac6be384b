"""Finding the tracked traders' events in the node's lines without decoding the rest.

The node writes every user's orders on the exchange (~1,500 status events per block, 15 blocks
a second); a collector follows a few traders, or a thousand. So a line is first searched as raw
bytes for the user field (``"user":"0x…"`` in an order or TWAP status, ``["0x…",`` opening a fill) and each
address found is looked up in the tracked set; only a line with a tracked user is decoded, and
then only its tracked events get typed. Pure logic, no I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

import msgspec

from collector_service.events.wire import EpochMs, FrameError, FrontendOrder, Id, excerpt, wide_int

STATUS_USER = b'"user":"'
FILL_USER = b'["0x'
ADDRESS_LEN = 42

_HEADER = re.compile(rb'"block_number":(\d+)')
_LOCAL_TIME = re.compile(rb'"local_time":"([^"]+)"')
_BLOCK_TIME = re.compile(rb'"block_time":"([^"]+)"')
HEADER_SPAN = 256
"""The envelope fields come first in a by-block line; they are read from its first bytes."""


def node_time(text: str) -> datetime:
    """A node timestamp (``2026-04-30T20:46:43.304461819``: nanoseconds, no zone, UTC) as an
    aware datetime (to the microsecond)."""
    head, dot, frac = text.partition(".")
    return datetime.fromisoformat(head + (dot + frac[:6] if dot else "")).replace(tzinfo=UTC)


class NodeStatus(msgspec.Struct, frozen=True, gc=False):
    """One order status event: a user's order reached ``status`` at ``time``."""

    time: str
    user: str
    status: str
    order: FrontendOrder


class NodeFill(msgspec.Struct, frozen=True, gc=False):
    """What a fill's transition needs (the stored fill document keeps every key)."""

    coin: str
    sz: str
    oid: Id
    tid: Id
    time: EpochMs
    side: str
    startPosition: str | None = None


class _Batch(msgspec.Struct, frozen=True, gc=False):
    block_number: int
    block_time: str = ""
    local_time: str = ""
    events: tuple[msgspec.Raw, ...] = ()


_batch_decoder = msgspec.json.Decoder(_Batch)
_status_decoder = msgspec.json.Decoder(NodeStatus)
_fill_pair_decoder = msgspec.json.Decoder(tuple[str, msgspec.Raw])
_fill_decoder = msgspec.json.Decoder(NodeFill)


@dataclass
class Hit:
    """A tracked trader's event: its index in the block (or line) and its raw JSON."""

    seq: int
    user: str
    raw: bytes


@dataclass
class Line:
    """One line read: where it ends in its file, its block (by-block layout) and its tracked events."""

    end: int
    block: int | None
    local_time: str | None
    block_time: str | None
    hits: list[Hit] = field(default_factory=list)


def tracked_in(
    line: bytes | memoryview,
    needle: bytes,
    skip: int,
    users: frozenset[bytes] | set[bytes],
    start: int = 0,
    stop: int | None = None,
) -> list[tuple[int, bytes]]:
    """``(position, address)`` of each tracked address after a ``needle`` in ``line[start:stop]``
    (``skip``: bytes from the needle's start to the address)."""
    data = bytes(line) if isinstance(line, memoryview) else line
    end = len(data) if stop is None else stop
    found = []
    find = data.find
    at = find(needle, start, end)
    while at >= 0:
        address = data[at + skip : at + skip + ADDRESS_LEN]
        if address in users:
            found.append((at, address))
        at = find(needle, at + skip + ADDRESS_LEN, end)
    return found


class Scanner:
    """Splits a chunk of complete lines and picks out the tracked traders' events, for one stream."""

    def __init__(self, kind: str, by_block: bool, users: set[str]) -> None:
        self.kind = kind
        self.by_block = by_block
        # a TWAP status names its user inside its ``state``, as ``"user":"0x…"`` too
        self.needle, self.skip = (FILL_USER, 2) if kind == "fills" else (STATUS_USER, len(STATUS_USER))
        self.users: frozenset[bytes] = frozenset()
        self.follow(users)
        self.lines = 0
        self.events_scanned = 0  # by-block only: events in the blocks read
        self.bad_lines = 0  # by-block lines that are not a block (passed over)
        self.last_error: str | None = None

    def follow(self, users: set[str]) -> None:
        """Track exactly these (lower-case) addresses from now on."""
        self.users = frozenset(u.encode() for u in users)

    def scan(self, data: bytes, base: int) -> list[Line]:
        """The lines of ``data`` (complete lines; it starts at file offset ``base``): every line of
        the by-block layout (each is a block), only the lines with tracked events otherwise."""
        if self.by_block:
            return self._blocks(data, base)
        return self._events(data, base)

    def _blocks(self, data: bytes, base: int) -> list[Line]:
        out = []
        start = 0
        size = len(data)
        while start < size:
            stop = data.index(b"\n", start)
            self.lines += 1
            if stop > start:
                out.append(self._block(data, start, stop, base))
            start = stop + 1
        return out

    def _block(self, data: bytes, start: int, stop: int, base: int) -> Line:
        head = data[start : min(stop, start + HEADER_SPAN)]
        number = _HEADER.search(head)
        local, btime = _LOCAL_TIME.search(head), _BLOCK_TIME.search(head)
        matches = tracked_in(data, self.needle, self.skip, self.users, start, stop)
        if number is None or matches:
            return self._decode_block(data[start:stop], [(at - start, a) for at, a in matches], base + stop + 1)
        return Line(
            base + stop + 1,
            int(number.group(1)),
            local.group(1).decode() if local else None,
            btime.group(1).decode() if btime else None,
        )

    def _decode_block(self, line: bytes, matches: list[tuple[int, bytes]], end: int) -> Line:
        try:
            batch = _batch_decoder.decode(line)
        except msgspec.MsgspecError as exc:
            # one bad line must not stop the stream: it is counted, reported and passed over
            self.bad_lines += 1
            self.last_error = f"{self.kind} block line: {exc} in {excerpt(line)!r}"
            return Line(end, None, None, None)
        self.events_scanned += len(batch.events)
        result = Line(end, batch.block_number, batch.local_time or None, batch.block_time or None)
        if not matches:
            return result
        # events are written without spaces: event i starts after the i earlier ones and their
        # commas; a hit whose event does not hold its address falls back to checking every event
        first = line.find(b'"events":[') + len(b'"events":[')
        starts = list(accumulate((len(raw) + 1 for raw in batch.events), initial=first))
        hits: dict[int, Hit] = {}
        for at, address in matches:  # ``at``: position in the line
            seq = bisect_right(starts, at) - 1
            raw = bytes(batch.events[seq]) if 0 <= seq < len(batch.events) else b""
            if address not in raw:
                return self._each_event(batch, result)
            hits.setdefault(seq, Hit(seq, address.decode(), raw))
        result.hits = [hits[seq] for seq in sorted(hits)]
        return result

    def _each_event(self, batch: _Batch, result: Line) -> Line:
        for seq, raw in enumerate(batch.events):
            found = tracked_in(bytes(raw), self.needle, self.skip, self.users)
            if found:
                result.hits.append(Hit(seq, found[0][1].decode(), bytes(raw)))
        return result

    def _events(self, data: bytes, base: int) -> list[Line]:
        """One event per line: a line is kept only when a tracked address is in it."""
        out = []
        line_start = 0
        for at, address in tracked_in(data, self.needle, self.skip, self.users):
            if at < line_start:
                continue  # a second address in a line already taken
            line_start = data.rfind(b"\n", 0, at) + 1
            stop = data.index(b"\n", at)
            out.append(Line(base + stop + 1, None, None, None, [Hit(0, address.decode(), data[line_start:stop])]))
            line_start = stop + 1
        self.lines += data.count(b"\n")
        if not out or out[-1].end != base + len(data):  # the chunk's end: how far it was read
            out.append(Line(base + len(data), None, None, None))
        return out


def decode_status(raw: bytes) -> NodeStatus:
    """A status event, or :class:`FrameError` (``invalid``) saying what is wrong with it."""
    try:
        return _status_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise FrameError("invalid", f"order status: {exc} in {excerpt(raw)!r}") from None


def decode_fill_event(raw: bytes) -> tuple[str, NodeFill, msgspec.Raw]:
    """A ``["0xuser", {fill}]`` event as its user, the fields a transition needs and the raw
    fill (for the stored document); :class:`FrameError` when it is not one."""
    try:
        user, fill = _fill_pair_decoder.decode(raw)
        decoded, wide = _fill_decoder.decode(fill), wide_int(msgspec.json.decode(fill))
    except msgspec.MsgspecError as exc:
        raise FrameError("invalid", f"fill: {exc} in {excerpt(raw)!r}") from None
    if wide is not None:  # the stored document keeps every key: each must fit in BSON
        raise FrameError("invalid", f"fill: {wide} does not fit in 64 bits in {excerpt(raw)!r}")
    return user, decoded, fill
