"""Hyperliquid non-validating-node output files, written from the exchange's own transitions.

What a node started with `--write-order-statuses --write-fills --disable-output-file-buffering`
(and optionally `--batch-by-block`) writes, for every user of the simulated exchange
(NODE.md §1-§2, shapes checked against the real samples in tests/fixtures/hyperliquid/):

- layout `hourly` (the default mode, one event per line):
  `<root>/node_order_statuses/hourly/YYYYMMDD/H` lines `{"time","user","status","order"}`,
  `<root>/node_fills/hourly/YYYYMMDD/H` lines `[user, fill]` and
  `<root>/node_twap_statuses/hourly/YYYYMMDD/H` lines `{"time","twap_id","state","status"}`;
- layout `by-block` (`--batch-by-block`, one block per line, empty blocks included):
  `<root>/node_order_statuses_by_block/hourly/YYYYMMDD/H`, `node_fills_by_block/...` and
  `node_twap_statuses_by_block/...` lines `{"local_time","block_time","block_number","events":[...]}`,
  status events `{"time","user","hash","builder","status","order"}`, fill events `[user, fill]` and
  TWAP status events `{"time","twap_id","state","status"}`;
- layout `both` writes both (a real node writes one; both lets one run feed both readers).

TWAP statuses (`--write-fills` writes them, SAMPLE-NOTES.md §1 and §3 "TWAP slices"): one event per
status change of a TWAP (`activated`, then `finished` or `terminated`), `state` the TwapState
`{coin,user,side,sz,executedSz,executedNtl,minutes,reduceOnly,randomize,timestamp}` at that change,
as in the `node_twap_statuses_by_block/hourly/20260128/15` example (SAMPLE-NOTES.md §3). Their
folder: the node README writes `node_twap_statuses/{date}/{hour}` without `hourly/`, consumers list
`node_twap_statuses_by_block/hourly` (NODE.md §1.2, "Verify"); the simulator writes `hourly/` in
both layouts, like the other streams. A TWAP's slices write fills only, no status line.

`H` is the hour of the line's `local_time` (the writer's clock, not the block's), not
zero-padded; a new date folder starts at midnight UTC. Every line is written with one
unbuffered write (as with `--disable-output-file-buffering`), except an injected partial line.

Blocks: simulated time is cut into blocks of `1000 / blocks_per_s` ms (default 14/s); block k
holds the transitions and fills whose exchange time falls in it, in the order they happened,
`block_time` is the block's last millisecond and `local_time` = block_time + `write_lag_ms`
(later after a restart pause: the catch-up). A block is written once the clock has passed its
`local_time` (`advance`, called by the simulator after each tick).

Deviations from a real node, on purpose: an event's `time` is the transition's own exchange
time (the truth file's time and orderStatus' statusTimestamp), where a real node repeats
`block_time`; `hash` is a synthetic tx hash on `open` lines and null otherwise (as in the real
sample, where rejects and cancels carry null); `builder` is always null. As on a real node
(NODE.md §2.4) a partial fill writes no status line: a repeated `open` of an order already
open (partial fill, or an in-place amend with `modify_keeps_oid`) is not written.

Faults (each recorded in `NodeWriter.faults` and the faults file, one JSON object a line):
`partial_line` (the next line is written in two parts, the rest `hold_ms` later), `restart`
(writing stops for `pause_ms`, then the last N blocks are written again or the next M blocks
are never written although they happened on the exchange) and `late_append` (at the next hour
rotation the old hour's last line is appended `delay_ms` after the new hour's file exists).
Records, each with `kind` and `time` (simulated ms):
- `partial_line` {stream, layout, path, block, offset, written, length, holdMs}, then
  `partial_line_completed` {stream, layout, block};
- `restart` {pauseMs, rewriteBlocks, skipBlocks}, then at the resume `rewritten_blocks` {blocks}
  or one `skipped_block` {block, orderStatuses: [[user, oid, status]...], fills: [[user, tid]...],
  twapStatuses: [[user, twapId, status]...]}
  per dropped block: what a reader must recover from the info API;
- `late_append_held` {stream, layout, path, block} at the rotation, then `late_append` (same
  fields) when the line is appended. Paths are relative to the node root.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from exchange_sim import rules
from exchange_sim.clock import LogicalClock
from exchange_sim.twaps import Twap

LAYOUTS = ("hourly", "by-block", "both")
STREAMS = ("order_statuses", "fills", "twap_statuses")
# The directory of each stream per layout (NODE.md §1.2).
STREAM_DIRS = {
    ("hourly", "order_statuses"): "node_order_statuses/hourly",
    ("hourly", "fills"): "node_fills/hourly",
    ("by-block", "order_statuses"): "node_order_statuses_by_block/hourly",
    ("by-block", "fills"): "node_fills_by_block/hourly",
    ("hourly", "twap_statuses"): "node_twap_statuses/hourly",
    ("by-block", "twap_statuses"): "node_twap_statuses_by_block/hourly",
}
# The order object's keys in the order a node writes them (real samples, 2025 and 2026).
NODE_ORDER_KEYS = (
    "coin",
    "side",
    "limitPx",
    "sz",
    "oid",
    "timestamp",
    "triggerCondition",
    "isTrigger",
    "triggerPx",
    "children",
    "isPositionTpsl",
    "reduceOnly",
    "orderType",
    "origSz",
    "tif",
    "cloid",
)
DEFAULT_BLOCKS_PER_S = 14.0  # ~14-15.6 blocks/s measured on mainnet (NODE.md §1.4)
DEFAULT_WRITE_LAG_MS = 30
DEFAULT_FIRST_BLOCK = 978_995_377  # the real by-block sample's first block
RECENT_BLOCKS_KEPT = 256  # how many written blocks a restart can write again


def node_time(ms: int) -> str:
    """Epoch milliseconds as a node's nanosecond ISO time without a timezone."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000"


def hour_file(root: Path, directory: str, ms: int) -> Path:
    """`<root>/<directory>/YYYYMMDD/H` for the UTC hour of `ms` (H not zero-padded)."""
    t = datetime.fromtimestamp(ms / 1000, UTC)
    return root / directory / t.strftime("%Y%m%d") / str(t.hour)


@dataclass
class Block:
    """One block's events in the order they happened on the exchange."""

    number: int
    time_ms: int  # block_time
    statuses: list[dict[str, Any]] = field(default_factory=list)  # by-block event shape
    fills: list[list[Any]] = field(default_factory=list)  # [user, fill]
    twaps: list[dict[str, Any]] = field(default_factory=list)  # {time, twap_id, state, status}
    local_ms: int = 0  # set when written

    def events(self, stream: str) -> list[Any]:
        """The block's events of one stream."""
        if stream == "order_statuses":
            return self.statuses
        return self.fills if stream == "fills" else self.twaps


class _Output:
    """One stream of one layout: appends lines to the hour file of their local time.

    Lines are written in order, each with one unbuffered write; a partial line holds back
    every later line of the stream until its rest is written (one writer, as on a node).
    """

    def __init__(self, root: Path, layout: str, stream: str, writer: NodeWriter) -> None:
        self.root, self.layout, self.stream = root, layout, stream
        self.directory = STREAM_DIRS[(layout, stream)]
        self._writer = writer
        self._path: Path | None = None
        self._file: IO[bytes] | None = None
        self._queue: deque[tuple[Path, bytes, int]] = deque()  # waiting behind a partial line
        self._tail: tuple[Path, bytes, int, int] | None = None  # (path, rest, block, release at)
        self.partial_hold_ms: int | None = None  # armed: split the next line
        self.late_delay_ms: int | None = None  # armed: append the old hour's last line late
        self._held: tuple[Path, bytes, int] | None = None  # the newest line, while late is armed
        self._late: list[tuple[Path, bytes, int, int]] = []  # (path, line, block, release at)

    def write(self, local_ms: int, line: bytes, block: int, now_ms: int) -> None:
        """Queue one line (without its newline) for the hour file of `local_ms`."""
        path = hour_file(self.root, self.directory, local_ms)
        data = line + b"\n"
        if self.late_delay_ms is not None:
            # Armed: each line is written one line late, so that the old hour's last line is
            # still unwritten when the first line of the next hour shows the rotation.
            held, self._held = self._held, (path, data, block)
            if held is None:
                return
            if held[0] == path:
                path, data, block = held
            else:  # rotation: the new hour's line first, the old hour's last line later
                self._late.append((*held, now_ms + self.late_delay_ms))
                self._writer.record(
                    "late_append_held", stream=self.stream, layout=self.layout, path=self._rel(held[0]), block=held[2]
                )
                self.late_delay_ms = None
                self._held = None
        if self._tail is not None:
            self._queue.append((path, data, block))
            return
        self._put(path, data, block, now_ms)

    def advance(self, now_ms: int) -> None:
        """Write the rest of a partial line and late appends whose time has come."""
        if self._tail is not None and now_ms >= self._tail[3]:
            path, rest, block, _ = self._tail
            self._tail = None
            self._append(path, rest)
            self._writer.record("partial_line_completed", stream=self.stream, layout=self.layout, block=block)
            while self._queue and self._tail is None:
                self._put(*self._queue.popleft(), now_ms)
        for item in [i for i in self._late if now_ms >= i[3]]:
            self._late.remove(item)
            path, data, block, _ = item
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab", buffering=0) as f:  # the older hour's file, not the open one
                f.write(data)
            self._writer.record(
                "late_append", stream=self.stream, layout=self.layout, path=self._rel(path), block=block
            )

    def drain(self) -> None:
        """Write everything held back (on close): a partial line's rest, queued and late lines."""
        if self._held is not None:
            self._queue.append(self._held)
            self._held = None
        self.advance(1 << 62)
        while self._queue:
            path, data, _ = self._queue.popleft()
            self._append(path, data)

    def close(self) -> None:
        """Close the open hour file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _put(self, path: Path, data: bytes, block: int, now_ms: int) -> None:
        if self.partial_hold_ms is not None:
            cut = max(1, len(data) // 2)
            offset = self._append(path, data[:cut])
            self._tail = (path, data[cut:], block, now_ms + self.partial_hold_ms)
            self._writer.record(
                "partial_line",
                stream=self.stream,
                layout=self.layout,
                path=self._rel(path),
                block=block,
                offset=offset,
                written=cut,
                length=len(data),
                holdMs=self.partial_hold_ms,
            )
            self.partial_hold_ms = None
            return
        self._append(path, data)

    def _append(self, path: Path, data: bytes) -> int:
        """Append `data` with one write; returns the file offset it was written at."""
        if path != self._path:
            self.close()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115 (kept open for the hour)
            self._path = path
        assert self._file is not None
        offset = self._file.tell()
        self._file.write(data)
        return offset

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))


class NodeWriter:
    """Groups the exchange's transitions and fills into blocks and writes node files.

    Register `on_transition` and `on_fill` as Exchange listeners and call `advance()` after the
    clock moves; `close()` writes what is pending (a clean shutdown) and closes the files.
    """

    def __init__(
        self,
        root: Path,
        clock: LogicalClock,
        *,
        layout: str = "by-block",
        blocks_per_s: float = DEFAULT_BLOCKS_PER_S,
        write_lag_ms: int = DEFAULT_WRITE_LAG_MS,
        first_block: int = DEFAULT_FIRST_BLOCK,
        faults_path: Path | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"node layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        if blocks_per_s <= 0 or write_lag_ms < 1:
            raise ValueError(f"need blocks_per_s > 0 and write_lag_ms >= 1, got {blocks_per_s} and {write_lag_ms}")
        self.root = Path(root)
        self.clock = clock
        self.layout = layout
        self.interval_ms = max(1, round(1000 / blocks_per_s))
        self.write_lag_ms = write_lag_ms
        self.first_block = first_block
        self._origin = clock.now_ms()
        layouts = ("hourly", "by-block") if layout == "both" else (layout,)
        self.outputs = {(lay, s): _Output(self.root, lay, s, self) for lay in layouts for s in STREAMS}
        self._pending: dict[int, Block] = {}  # block index -> block, not yet written
        self._next = 0  # index of the next block to write
        self._last_local = 0
        self._recent: deque[Block] = deque(maxlen=RECENT_BLOCKS_KEPT)
        self._open_oids: set[int] = set()
        self._resume_at: int | None = None  # writing paused (a restart) until this time
        self._rewrite = 0
        self._skip = 0
        self.faults: list[dict[str, Any]] = []
        self._faults_file: IO[str] | None = open(faults_path, "w") if faults_path else None  # noqa: SIM115
        self.blocks_written = 0
        self.lines_written = 0
        self.events_written = 0

    # ----- exchange listeners ----------------------------------------------------------------
    def on_transition(self, user: str, status: str, order: dict[str, Any], time_ms: int) -> None:
        """Add one order transition to its block (an Exchange listener)."""
        oid = order["oid"]
        if status == rules.OPEN:
            if oid in self._open_oids:
                return  # a partial fill or in-place amend: no status line on a node
            self._open_oids.add(oid)
        elif status not in rules.LIVE_STATUSES:
            self._open_oids.discard(oid)
        block = self._block(time_ms)
        tx = None
        if status == rules.OPEN:
            tx = "0x" + hashlib.sha256(f"tx:{block.number}:{user}:{oid}".encode()).hexdigest()
        block.statuses.append(
            {
                "time": node_time(time_ms),
                "user": user,
                "hash": tx,
                "builder": None,
                "status": status,
                "order": {k: order[k] for k in NODE_ORDER_KEYS},
            }
        )

    def on_fill(self, user: str, fill: dict[str, Any]) -> None:
        """Add one fill to its block (an Exchange fill listener)."""
        self._block(int(fill["time"])).fills.append([user, fill])

    def on_twap(self, twap: Twap, status: str, time_ms: int) -> None:
        """Add one TWAP status change to its block (a Twaps listener)."""
        event = {"time": node_time(time_ms), "twap_id": twap.twap_id, "state": twap.state(), "status": status}
        self._block(time_ms).twaps.append(event)

    def _block(self, time_ms: int) -> Block:
        k = max(self._next, (time_ms - self._origin) // self.interval_ms)
        block = self._pending.get(k)
        if block is None:
            end = self._origin + (k + 1) * self.interval_ms - 1
            block = self._pending[k] = Block(self.first_block + k, end)
        return block

    # ----- writing ---------------------------------------------------------------------------
    def advance(self, now_ms: int | None = None) -> None:
        """Write every block whose local time has passed (and due held-back lines)."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        if self._resume_at is not None:
            if now < self._resume_at:
                self._advance_outputs(now)
                return
            self._resume(now)
        while True:
            end = self._origin + (self._next + 1) * self.interval_ms - 1
            if end + self.write_lag_ms > now:
                break
            block = self._pending.pop(self._next, None) or Block(self.first_block + self._next, end)
            self._next += 1
            if self._skip:
                self._skip -= 1
                self.record(
                    "skipped_block",
                    block=block.number,
                    orderStatuses=[[e["user"], e["order"]["oid"], e["status"]] for e in block.statuses],
                    fills=[[u, f["tid"]] for u, f in block.fills],
                    twapStatuses=[[e["state"]["user"], e["twap_id"], e["status"]] for e in block.twaps],
                )
                continue
            self._write_block(block, now)
        self._advance_outputs(now)

    def _advance_outputs(self, now: int) -> None:
        for out in self.outputs.values():
            out.advance(now)

    def _resume(self, now: int) -> None:
        self._resume_at = None
        self._last_local = max(self._last_local, now)
        again = list(self._recent)[-self._rewrite :] if self._rewrite else []
        self._rewrite = 0
        if again:
            self.record("rewritten_blocks", blocks=[b.number for b in again])
        for block in again:
            self._write_block(block, now, again=True)

    def _write_block(self, block: Block, now: int, *, again: bool = False) -> None:
        block.local_ms = self._last_local = max(block.time_ms + self.write_lag_ms, self._last_local + 1)
        local, number = block.local_ms, block.number
        for (layout, stream), out in self.outputs.items():
            events = block.events(stream)
            if layout == "by-block":
                line = orjson.dumps(
                    {
                        "local_time": node_time(local),
                        "block_time": node_time(block.time_ms),
                        "block_number": number,
                        "events": events,
                    }
                )
                out.write(local, line, number, now)
                self.lines_written += 1
            else:
                for ev in events:
                    if stream == "order_statuses":
                        ev = {"time": ev["time"], "user": ev["user"], "status": ev["status"], "order": ev["order"]}
                    out.write(local, orjson.dumps(ev), number, now)
                    self.lines_written += 1
        self.blocks_written += 1
        self.events_written += len(block.statuses) + len(block.fills) + len(block.twaps)
        if not again:
            self._recent.append(block)

    # ----- faults ----------------------------------------------------------------------------
    def partial_line(self, stream: str | None = None, hold_ms: int = 500, layout: str | None = None) -> None:
        """Write the next line of `stream` (default: every stream) in two parts, the second
        `hold_ms` of simulated time later; later lines of the stream wait behind it."""
        for out in self._select(stream, layout):
            out.partial_hold_ms = hold_ms

    def restart(self, pause_ms: int, *, rewrite_blocks: int = 0, skip_blocks: int = 0) -> None:
        """A node restart: write nothing for `pause_ms`, then write the last `rewrite_blocks`
        written blocks again (same block numbers, new local_time), or drop the next
        `skip_blocks` blocks (a block-number gap; their events still happened)."""
        if rewrite_blocks and skip_blocks:
            raise ValueError("a restart either rewrites or skips blocks, not both")
        if rewrite_blocks > RECENT_BLOCKS_KEPT:
            raise ValueError(f"can rewrite at most {RECENT_BLOCKS_KEPT} blocks, not {rewrite_blocks}")
        now = self.clock.now_ms()
        self._resume_at = now + pause_ms
        self._rewrite, self._skip = rewrite_blocks, skip_blocks
        self.record("restart", pauseMs=pause_ms, rewriteBlocks=rewrite_blocks, skipBlocks=skip_blocks)

    def late_append(self, stream: str | None = None, delay_ms: int = 1000, layout: str | None = None) -> None:
        """At the next hour rotation of `stream` (default: every stream), append the old hour's
        last line `delay_ms` of simulated time after the new hour's file got its first line."""
        for out in self._select(stream, layout):
            out.late_delay_ms = delay_ms

    def release_late(self) -> None:
        """Append the held late lines now rather than at their time (a script decides when)."""
        now = self.clock.now_ms()
        for out in self.outputs.values():
            out._late = [(path, data, block, min(at, now)) for path, data, block, at in out._late]
        self._advance_outputs(now)

    def _select(self, stream: str | None, layout: str | None) -> list[_Output]:
        if stream is not None and stream not in STREAMS:
            raise ValueError(f"stream must be one of {', '.join(STREAMS)}, not {stream!r}")
        return [o for (lay, s), o in self.outputs.items() if stream in (None, s) and layout in (None, lay)]

    def record(self, kind: str, **fields: Any) -> None:
        """Note a fault in `faults` and the faults file."""
        rec = {"kind": kind, "time": self.clock.now_ms(), **fields}
        self.faults.append(rec)
        if self._faults_file:
            self._faults_file.write(json.dumps(rec, separators=(",", ":")) + "\n")
            self._faults_file.flush()

    # ----- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """A clean shutdown: write every pending block and held-back line, close the files."""
        if self._pending or self._resume_at is not None:
            last = max((b.time_ms for b in self._pending.values()), default=self.clock.now_ms())
            self.advance(max(last + self.write_lag_ms, self._resume_at or 0))
        for out in self.outputs.values():
            out.drain()
            out.close()
        if self._faults_file:
            self._faults_file.close()
            self._faults_file = None

    def stats(self) -> dict[str, Any]:
        """Counts for the run summary."""
        faults: dict[str, int] = {}
        for f in self.faults:
            faults[f["kind"]] = faults.get(f["kind"], 0) + 1
        return {
            "nodeBlocksWritten": self.blocks_written,
            "nodeLinesWritten": self.lines_written,
            "nodeEventsWritten": self.events_written,
            "nodeFaults": faults,
        }
