"""The node-file source: tail the node's order statuses, fills and TWAP statuses, exactly once
across restarts.

Exactly once is at-least-once reading plus idempotent writing, with the checkpoint kept
consistent with the trackers' state: every chunk of lines read becomes one journal append
holding its events *and* the checkpoint of every stream after it (``node_checkpoint``
operations, written to ``node_checkpoints`` after the events before them). A crash therefore
leaves, after the journal replay at start, the stored open orders exactly as of the stored
checkpoint, and reading resumes there: no line is applied twice (a partial fill is not
idempotent), none is skipped. Blocks the node writes again (a replay after its restart) are
dropped by block number; in the hourly layout, which has none, a tracked line byte for byte the
same as one read recently is dropped.

A jump in block numbers is a gap (the node lost its peer, or skipped blocks), and so is a file
pruned unread: the tracked traders are resynced (:mod:`collector_service.sources.node_resync`).
This module reads the streams and applies their lines in block order; the reading state of each
stream and its checkpoint are in :mod:`collector_service.sources.node_streams`, the lines turned
into operations in :mod:`collector_service.sources.node_ops`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from collector_service import schema
from collector_service.events.node_lines import (
    Line,
    NodeStatus,
    Scanner,
    decode_fill_event,
    decode_status,
    node_time,
)
from collector_service.events.node_transitions import SOURCE_NODE, Placed
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.twaps import node_twap_doc
from collector_service.events.wire import FrameError
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.pipeline import Pipeline
from collector_service.rest import InfoClient, RestError
from collector_service.sources.node_files import (
    OPTIONAL,
    Chunk,
    Kind,
    NodeFilesError,
    Position,
    Tailer,
    find_streams,
)
from collector_service.sources.node_ops import LineOps, same_block
from collector_service.sources.node_resync import Resyncs
from collector_service.sources.node_streams import StreamState, checkpoint_doc, event_time
from collector_service.store import Op, twap_ops

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often the files are checked for new lines when nothing was read (NODE.md §6.2: 100-250 ms)."""

STALL_S = 10.0
"""A stream with no new line for this long is stalled (the node writes ~15 blocks a second)."""

MERGE_WAIT_S = 0.5
"""Both streams have a line per block (by-block layout), and a block's statuses are applied before
its fills, so that a fill finds its order open and a cancel does not overtake a partial fill. A
stream that has written nothing for this long no longer holds the other back (a stalled writer,
NODE.md §1.3), except for the other's first lines after a pause of its own as long: when the node
pauses, both streams resume together, and the one read first waits this long for the other."""

RECENT_BLOCKS = 100_000
"""Block numbers remembered to drop a block the node writes twice (~2 hours of blocks)."""

FOLLOWED = "followed"
"""The ``node_checkpoints`` document listing the traders whose lines the checkpoints include: a
trader listed at a start but not in it has a gap (:meth:`NodeSource.resume`)."""

REMEMBER_BYTES = 64 << 20
"""At a resume in the hourly layout, how far before the checkpoint the files are scanned for the
tracked lines already applied (a node restart can write them again after ours)."""


class NodeSource:
    """Reads both streams, turns the tracked traders' lines into operations, and journals them
    with the checkpoint after them."""

    def __init__(
        self,
        data_dir: Path,
        pipeline: Pipeline,
        stats: Stats,
        *,
        start: Literal["now", "earliest"] = "now",
        prefer_by_block: bool = True,
        resync_client: InfoClient | None = None,
        dexes: Callable[[], list[str]] = lambda: [schema.MAIN_DEX],
        poll_s: float = POLL_S,
    ) -> None:
        self.data_dir = data_dir
        self.pipeline = pipeline
        self.stats = stats
        self.start = start
        self.resync_client = resync_client
        self.poll_s = poll_s
        users = set(pipeline.users)
        self.streams: dict[Kind, StreamState] = {
            kind: StreamState(stream, None, Scanner(kind, stream.by_block, users))
            for kind, stream in find_streams(data_dir, prefer_by_block).items()
        }
        if not self.streams:
            raise NodeFilesError(
                f"NODE_DATA_DIR {data_dir} holds no node_order_statuses[_by_block]/hourly or "
                "node_fills[_by_block]/hourly folder: run the node with --write-order-statuses "
                "--write-fills --batch-by-block"
            )
        self.ops = LineOps(pipeline)
        self.resyncs = Resyncs(
            pipeline, stats, self.streams, self.ops, client=resync_client, dexes=dexes, poll_s=poll_s
        )
        self._warn = RateLimitedLog(log)

    def resume(self, checkpoints: dict[str, dict[str, Any]]) -> bool:
        """Position each stream at its stored checkpoint, or at ``NODE_START`` without one;
        True when every stream had a checkpoint (nothing was missed while we were down)."""
        resumed = True
        for kind, state in self.streams.items():
            doc = checkpoints.get(kind)
            layout = "by_block" if state.stream.by_block else "hourly"
            if doc is not None and doc.get("layout") == layout:
                previous = (
                    Position(self.data_dir / doc["previousPath"], int(doc["previousOffset"]))
                    if doc.get("previousPath")
                    else None
                )
                state.start_at(
                    Tailer(state.stream, Position(self.data_dir / doc["path"], int(doc["offset"])), previous)
                )
                state.last_block = state.floor = doc.get("blockNumber")
                state.last_block_time = doc.get("blockTime")
                if not state.stream.by_block:
                    self._remember_applied(state)
                log.info(
                    "event=node_resume stream=%s file=%s offset=%d block=%s",
                    kind,
                    doc["path"],
                    doc["offset"],
                    state.last_block,
                )
            else:
                tailer = Tailer.start(state.stream, self.start)
                if doc is None and tailer is None and checkpoints:
                    # a stream with no file yet after a run that read the others: nothing missed
                    # (TWAP statuses before the first TWAP, hourly layout); read from its first file
                    state.start_at(None)
                    log.info("event=node_start stream=%s layout=%s start=first_file", kind, layout)
                    continue
                if doc is not None:
                    log.warning(
                        "event=node_layout_changed stream=%s was=%s now=%s note='starting at NODE_START'",
                        kind,
                        doc.get("layout"),
                        layout,
                    )
                resumed = False
                state.start_at(tailer)
                log.info(
                    "event=node_start stream=%s layout=%s start=%s file=%s",
                    kind,
                    layout,
                    self.start,
                    state.tailer.current.path if state.tailer else None,
                )
        if not resumed and self.start == "now":
            # what the stored open orders say may be old: rebuild them, and recover since each
            # trader was last seen, as after a reconnect
            for user in sorted(self.pipeline.users):
                self.pipeline.open_gap(user, self.pipeline.last_seen.get(user))
        followed = checkpoints.get(FOLLOWED)
        if followed is not None:
            # listed now but not followed by the run that moved the checkpoints on (let go from
            # the list then, or listed again while we were down): their lines up to the
            # checkpoints were read past, not applied; recover since each was last seen
            for user in sorted(self.pipeline.users - set(followed["users"])):
                self.pipeline.open_gap(user, self.pipeline.last_seen.get(user))
        self._note_followed()
        return resumed

    def _note_followed(self) -> None:
        """Journal the traders followed from now on (the ``followed`` document of
        ``node_checkpoints``), before any checkpoint that moves past lines read for them only."""
        doc = {"_id": FOLLOWED, "users": sorted(self.pipeline.users), "updatedAt": datetime.now(UTC)}
        self.pipeline.writer.submit([{"kind": "node_checkpoint", "doc": doc}])

    def _remember_applied(self, state: StreamState) -> None:
        """Hourly layout: note the tracked lines up to :data:`REMEMBER_BYTES` before the checkpoint
        as seen, so a line the node writes again after we restarted is still dropped."""
        assert state.tailer is not None
        scanner = Scanner(state.stream.kind, False, set(self.pipeline.users))
        for position in (state.tailer.previous, state.tailer.current):
            if position is None or position.offset == 0 or not position.path.is_file():
                continue  # a pruned file: the tailer reports it
            start = max(0, position.offset - REMEMBER_BYTES)
            with open(position.path, "rb") as handle:
                handle.seek(start)
                data = handle.read(position.offset - start)
            if start:  # begin at the first whole line
                data = data[data.find(b"\n") + 1 :]
            for line in scanner.scan(data, position.offset - len(data)):
                for hit in line.hits:
                    state.first_time(hit.raw)

    def follow(self, users: set[str]) -> None:
        """The tracked traders changed."""
        for state in self.streams.values():
            state.scanner.follow(users)
        self._note_followed()

    def add(self, user: str) -> None:
        """Follow a trader added while running: its lines count from now on, its open orders
        come from a snapshot and its history from recovery (the caller opened its gap)."""
        self.follow(self.pipeline.users)
        self.resyncs.start(user, self.pipeline.gaps.get(user))

    def remove(self, user: str) -> None:
        """Let go of a trader removed from the watch list: its lines no longer count, and a resync
        of it under way is dropped with the lines waiting for it (its gap stays journaled: a
        comeback recovers from its stored record, Service._join)."""
        self.follow(self.pipeline.users)
        self.resyncs.drop(user)

    async def run(self) -> None:
        """Read until cancelled. Gaps a previous run did not repair are resynced first."""
        for user in sorted({*self.pipeline.gaps, *self.resyncs.waiting}):  # lines reloaded wait too
            self.resyncs.start(user, self.pipeline.gaps.get(user))
        while True:
            busy = False
            for state in self.streams.values():
                if state.tailer is None:
                    state.start_at(Tailer.start(state.stream, "earliest"))  # its first file just appeared
                    if state.tailer is None:
                        continue
                try:
                    read = await asyncio.to_thread(self._read, state)
                except NodeFilesError as exc:  # this stream cannot go on; the others do, /healthz says why
                    state.error = str(exc)
                    self._warn.log(
                        logging.ERROR,
                        f"node_files:{state.stream.kind}",
                        "event=node_stream_error stream=%s error=%r",
                        state.stream.kind,
                        state.error,
                    )
                    continue
                state.error = None
                if state.tailer.pruned:
                    self._pruned(state)
                if read is not None:
                    busy = True
                    self.queue(state, *read)
            self.drain()
            if not busy:
                await asyncio.sleep(self.poll_s)

    @staticmethod
    def _read(state: StreamState) -> tuple[Chunk, list[Line]] | None:
        """The next chunk of a stream and its lines, off the event loop."""
        assert state.tailer is not None
        chunk = state.tailer.read()
        if chunk is None:
            return None
        return chunk, state.scanner.scan(chunk.data, chunk.end - len(chunk.data))

    def queue(self, state: StreamState, chunk: Chunk, lines: list[Line]) -> None:
        """Lines read, to be applied in block order by :meth:`drain`."""
        state.bytes_read += len(chunk.data)
        if not chunk.late:
            state.read_to = Position(chunk.path, chunk.end)
        now = time.monotonic()
        if now - state.last_read_at >= MERGE_WAIT_S:
            state.resumed_at = now
        state.last_read_at = now
        if state.stream.kind == "order_statuses" and not state.stream.by_block:
            state.read_time = event_time(chunk.data[chunk.data.rfind(b"\n", 0, len(chunk.data) - 1) + 1 :])
        if state.scanner.last_error is not None:
            self._warn.log(
                logging.WARNING,
                f"bad_line:{state.stream.kind}",
                "event=bad_node_line stream=%s bad_lines=%d error=%r",
                state.stream.kind,
                state.scanner.bad_lines,
                state.scanner.last_error,
            )
            state.scanner.last_error = None
        for line in lines:
            state.pending.append((chunk.path, line))
            if line.block is not None and line.block > state.read_block:
                state.read_block = line.block

    def _next(self) -> tuple[StreamState, Path, Line] | None:
        """The line to apply next: the lowest block of the streams' first waiting lines (statuses
        before fills in a tie), unless another by-block stream may still write a lower one, or the
        rest of the block of the last status line read may still be written (hourly layout)."""
        best: tuple[int, StreamState] | None = None
        for state in self.streams.values():  # order_statuses first
            if state.pending:
                block = state.pending[0][1].block
                key = -1 if block is None else block
                if best is None or key < best[0]:
                    best = (key, state)
        if best is None:
            return None
        block, chosen = best
        if block >= 0:
            now = time.monotonic()
            for other in self.streams.values():
                if (
                    other is not chosen
                    and other.stream.by_block
                    and not other.pending
                    and other.tailer is not None
                    and other.read_block < block
                    and min(now - other.last_read_at, now - chosen.resumed_at) < MERGE_WAIT_S
                ):
                    return None  # its line for this block is probably being written
        elif (
            chosen.read_time is not None
            and chosen.pending[0][1].hits
            and event_time(chosen.pending[0][1].hits[0].raw) == chosen.read_time
            and time.monotonic() - chosen.last_read_at < MERGE_WAIT_S
        ):
            # hourly layout: a block's statuses are lines written one by one, so the block of the
            # last line read may go on (a modify's ``open`` after its ``canceled``); its lines wait
            # until a later block is read (or the node pauses) to be applied together
            return None
        path, line = chosen.pending.popleft()
        return chosen, path, line

    def drain(self) -> None:
        """Apply the lines that may be applied, and journal their operations with the checkpoints
        after them (one append: the events and the checkpoint are durable together)."""
        observed_at = datetime.now(UTC)
        ops: list[Op] = []
        held: list[tuple[NodeStatus, Placed]] = []
        gap, gap_since, applied = False, None, 0
        while (taken := self._next()) is not None:
            state, path, line = taken
            state.applied(path, line)
            applied += 1
            if line.block is not None:
                verdict = self._block(state, line)
                if verdict == "done":
                    continue
                if verdict == "gap" and not gap:
                    gap, gap_since = True, state.gap_since
            elif line.hits:
                fresh = [hit for hit in line.hits if state.first_time(hit.raw)]
                state.lines_repeated += len(line.hits) - len(fresh)
                line.hits = fresh
            ops += self._apply(state.stream.kind, line, observed_at, held)
        ops += self.ops.statuses(held, observed_at)
        if not applied:
            return
        ops += [
            {"kind": "node_checkpoint", "doc": checkpoint_doc(s, self.data_dir)}
            for s in self.streams.values()
            if s.done
        ]
        if gap:
            # journal every tracked trader's gap before the checkpoint that passes the missing
            # blocks: a crash in between must leave the gap to recover at the next start, never
            # a checkpoint past blocks that nobody will recover
            for user in sorted(self.pipeline.users):
                self.pipeline.open_gap(user, gap_since)
        self.pipeline.writer.submit(ops)
        if gap:
            self.resyncs.start_all(gap_since)

    def _pruned(self, state: StreamState) -> None:
        """The tailer found files deleted before they were read out (pruned while we were down)
        and went on at the next hour: a gap. By block, the jump in block numbers of the next line
        reports it and resyncs (no jump: nothing was lost); hourly lines carry no block number, so
        every tracked trader's gap is journaled and resynced now, before any later line is applied."""
        assert state.tailer is not None
        for path in state.tailer.pruned:
            state.files_missing += 1
            state.done.pop(path, None)
        state.tailer.pruned.clear()
        if state.stream.by_block:
            return
        state.gaps += 1
        log.error("event=node_gap stream=%s note='a file was pruned unread; resyncing tracked traders'",
                  state.stream.kind)
        for user in sorted(self.pipeline.users):
            self.pipeline.open_gap(user, state.last_block_time)
        self.resyncs.start_all(state.last_block_time)

    def _block(self, state: StreamState, line: Line) -> Literal["done", "next", "gap"]:
        """Account for a block line: ``done`` already (the node wrote it twice, or it precedes
        the checkpoint), the ``next`` one, or after a ``gap`` (which began at ``state.gap_since``)."""
        block = line.block
        assert block is not None
        if block in state.recent or (state.floor is not None and block <= state.floor):
            state.blocks_repeated += 1
            return "done"
        state.recent[block] = None
        if len(state.recent) > RECENT_BLOCKS:
            del state.recent[next(iter(state.recent))]
        verdict: Literal["next", "gap"] = "next"
        previous = state.last_block
        if previous is not None and block > previous + 1:
            state.gaps += 1
            state.blocks_missing += block - previous - 1
            state.gap_since = state.last_block_time
            log.error(
                "event=node_gap stream=%s after_block=%d next_block=%d missing=%d note='resyncing tracked traders'",
                state.stream.kind,
                previous,
                block,
                block - previous - 1,
            )
            verdict = "gap"
        if previous is None or block > previous:
            state.last_block = block
            if line.block_time:
                state.last_block_time = node_time(line.block_time)
        if line.local_time:
            state.last_local_time = node_time(line.local_time)
        return verdict

    def _apply(self, kind: Kind, line: Line, observed_at: datetime, held: list[tuple[NodeStatus, Placed]]) -> list[Op]:
        """The operations of a line's tracked events. Its statuses join ``held``, the statuses of
        one block not applied yet, which are applied (their operations first) once a status of
        another block or a fill comes: a block's transitions must be applied together for a modify
        to be linked (without a cloid its ``canceled`` and ``open`` are paired only within one
        batch), and in the hourly layout they are spread over lines, one event each."""
        block_at = node_time(line.block_time) if line.block_time else None
        ops: list[Op] = []
        for hit in line.hits:
            try:
                if kind == "order_statuses":
                    status = decode_status(hit.raw)
                    where = Placed(line.block, block_at or node_time(status.time))
                    if status.user in self.resyncs.waiting:
                        ops.append(self.resyncs.hold(status.user, (kind, status, where), hit.raw))
                        continue
                    if held and not same_block(held[-1], (status, where)):
                        ops += self.ops.statuses(held, observed_at)
                    held.append((status, where))
                elif kind == "twap_statuses":  # touches no book: applied at once, even while resyncing
                    if self.pipeline.record_twaps:
                        ops += twap_ops([node_twap_doc(hit.user, hit.raw, observed_at)])
                else:
                    user, fill, raw = decode_fill_event(hit.raw)
                    where = Placed(line.block, block_at or ms_to_datetime(fill.time))
                    if user in self.resyncs.waiting:
                        ops.append(self.resyncs.hold(user, (kind, (user, fill, raw), where), hit.raw))
                    else:
                        ops += self.ops.statuses(held, observed_at)  # a block's statuses before its fills
                        ops += self.ops.fill(user, fill, raw, where, observed_at)
            except FrameError as exc:
                self.streams[kind].bad_events += 1
                self.stats.bad_frames[f"node_{kind}"] += 1
                self._warn.log(
                    logging.WARNING, f"bad_node:{kind}", "event=bad_node_event stream=%s error=%r", kind, str(exc)
                )
        return ops

    async def run_positions(self, interval: float = 1.0) -> None:
        """Keep positions current: after a fill, the trader's ``clearinghouseState`` on that dex
        is fetched (once per interval however many fills came; weight 2 on the public API, free
        from the node's info server) and diffed by the position book. The fill alone does not
        tell the new entry price or margin, the clearinghouse state does."""
        while True:
            await asyncio.sleep(interval)
            wanted, self.ops.positions_wanted = list(self.ops.positions_wanted), {}
            for user, dex in wanted:
                if user not in self.pipeline.users:
                    continue
                client = self.resync_client or self.pipeline.clients[user]
                try:
                    state = await client.clearinghouse_state(user, dex)
                    self.pipeline.on_positions(user, dex, state, datetime.now(UTC), source=SOURCE_NODE)
                except (RestError, FrameError) as exc:
                    self.ops.positions_wanted[(user, dex)] = None  # try again next round
                    self._warn.log(
                        logging.WARNING,
                        f"positions:{user}",
                        "event=node_positions_failed user=%s error=%r",
                        user,
                        str(exc),
                    )

    def figures(self) -> dict[str, dict[str, Any]]:
        """Per stream: where it reads, how far behind the node it is, and its gaps."""
        now, mono = datetime.now(UTC), time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        for kind, state in self.streams.items():
            current, _ = state.position()
            behind = None
            if current is not None:
                try:
                    behind = current.path.stat().st_size - current.offset
                except OSError:
                    behind = None
            out[kind] = {
                "layout": "by_block" if state.stream.by_block else "hourly",
                "file": str(current.path) if current else None,
                "offset": current.offset if current else None,
                "bytes_behind": behind,
                "last_block": state.last_block,
                "lag_seconds": (now - state.last_local_time).total_seconds() if state.last_local_time else None,
                "block_lag_seconds": (
                    (state.last_local_time - state.last_block_time).total_seconds()
                    if state.last_local_time and state.last_block_time
                    else None
                ),
                "idle_seconds": mono - state.last_read_at,
                # one TWAP status a line (hourly layout) can be quiet for long: no line is no stall
                "stalled": (state.stream.by_block or kind != OPTIONAL) and mono - state.last_read_at > STALL_S,
                "gaps": state.gaps,
                "blocks_missing": state.blocks_missing,
                "blocks_repeated": state.blocks_repeated,
                "lines_repeated": state.lines_repeated,
                "files_missing": state.files_missing,
                "late_appends": state.tailer.late_appends if state.tailer else 0,
                "lines": state.scanner.lines,
                "bytes_read": state.bytes_read,
                "bad_events": state.bad_events,
                "bad_lines": state.scanner.bad_lines,
                "error": state.error,
            }
        return out

    def close(self) -> None:
        for state in self.streams.values():
            if state.tailer is not None:
                state.tailer.close()
