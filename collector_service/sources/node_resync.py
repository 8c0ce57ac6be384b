"""The node-file source's resync of a trader: its open orders rebuilt from a snapshot, and what a
gap hid recovered, while its lines wait.

A jump in block numbers is a gap (the node lost its peer, or skipped blocks): the tracked
traders' open orders are resynced from the node's own info server (``NODE_INFO_URL``) or the
public info API within the REST budget, and what the gap hid is recovered from
``historicalOrders`` as after a WebSocket reconnect. While a trader resyncs, its transitions
wait: those read before a dex's snapshot was asked for are in it, those read once the files have
caught up with its answer are applied on top of it, and a snapshot that a line raced is taken
again (see :meth:`Resyncs._snapshots`). A line held back is journaled (``node_waiting``) behind
the checkpoint of its chunk, so a restart before the resync applied it reloads it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collector_service import schema
from collector_service.events.node_lines import decode_fill_event, decode_status
from collector_service.events.node_transitions import Placed
from collector_service.events.wire import FrameError
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.pipeline import Pipeline
from collector_service.rest import InfoClient, RestError
from collector_service.sources.node_files import Kind, Position, hour_files, last_line_end
from collector_service.sources.node_ops import LineOps, Waiting
from collector_service.sources.node_streams import StreamState
from collector_service.store import Op

log = logging.getLogger(__name__)

RESYNC_SETTLE_S = 1.0
"""How far a snapshot's server (the public API at the chain's head, or the node's info server) is
taken to be ahead of the node's files: after an answer, the files are read to where they end this
long later before the snapshot is checked for lines that raced it (:meth:`Resyncs.resync`)."""

RESYNC_CATCH_UP_S = 10.0
"""How long a resync waits for the reader to reach that end (a reader this far behind cannot tell
whether the snapshot raced the trader's lines: the try counts as ambiguous)."""

RESYNC_TRIES = 3
"""Snapshots taken of a trader's dex before one that raced its lines is used all the same."""


def _dex_of(item: Waiting) -> str:
    """The dex of a waiting status or fill."""
    kind, what, _ = item
    return schema.dex_of(what.order.coin if kind == "order_statuses" else what[1].coin)


class Resyncs:
    """The traders being resynced, each with its lines waiting and its resync task."""

    def __init__(
        self,
        pipeline: Pipeline,
        stats: Stats,
        streams: dict[Kind, StreamState],
        ops: LineOps,
        *,
        client: InfoClient | None,
        dexes: Callable[[], list[str]],
        poll_s: float,
    ) -> None:
        self.pipeline = pipeline
        self.stats = stats
        self.streams = streams
        self.ops = ops
        self.client = client  # the node's info server; None: each trader's public API client
        self.dexes = dexes
        self.poll_s = poll_s
        self.waiting: dict[str, list[Waiting]] = {}  # per trader resyncing, its lines held back
        self.tasks: dict[str, asyncio.Task[Any]] = {}  # the resync task of each trader resyncing
        self.ambiguous = 0  # snapshots used although they raced the trader's lines
        self._read_ns = 0  # when the newest held-back line was read (strictly increasing)
        self._warn = RateLimitedLog(log)

    def hold(self, user: str, item: Waiting, raw: bytes) -> Op:
        """Hold a line of a resyncing trader back, and the operation journaling it: it is behind
        the checkpoint of its chunk, so a restart before the resync applied it reloads it."""
        self.waiting[user].append(item)
        self._read_ns = max(time.time_ns(), self._read_ns + 1)
        kind, _, where = item
        doc = {"_id": f"{user}:{self._read_ns}", "user": user, "kind": kind, "raw": raw.decode(),
               "block": where.block, "at": where.at, "readAt": self._read_ns}
        return {"kind": "node_waiting", "doc": doc}

    def reload(self, docs: list[dict[str, Any]]) -> None:
        """The lines a previous run held back for resyncing traders (:meth:`hold`), waiting
        again: they are older than any snapshot this run takes, so they are all in it."""
        for doc in docs:
            if doc["user"] not in self.pipeline.users:  # no longer followed: forgotten
                self.pipeline.writer.submit([{"kind": "node_waiting_done", "doc": {"user": doc["user"]}}])
                continue
            kind, raw, where = doc["kind"], doc["raw"].encode(), Placed(doc["block"], doc["at"])
            item: Any = decode_status(raw) if kind == "order_statuses" else decode_fill_event(raw)
            self.waiting.setdefault(doc["user"], []).append((kind, item, where))
        if docs:
            log.info("event=node_waiting_reloaded lines=%d traders=%d", len(docs), len({d["user"] for d in docs}))

    def start(self, user: str, since: datetime | None) -> None:
        """Resync a trader (see :meth:`resync`); its transitions wait from now (after any already
        waiting for it: reloaded at start, or held since a gap was found mid-chunk)."""
        self.waiting.setdefault(user, [])
        self.tasks[user] = self.pipeline.spawn(self.resync(user, since))

    def start_all(self, since: datetime | None) -> None:
        """Resync every tracked trader not resyncing already (their transitions wait from now)."""
        for user in sorted(self.pipeline.users):
            if user not in self.waiting:
                self.start(user, since)

    def drop(self, user: str) -> None:
        """Drop a trader's resync under way, with the lines waiting for it."""
        task = self.tasks.pop(user, None)
        if task is not None:
            task.cancel()
        self.waiting.pop(user, None)

    async def resync(self, user: str, since: datetime | None) -> None:
        """Rebuild a trader's open orders from a snapshot (node info server or public API) and
        recover what a gap hid, then apply the transitions that waited meanwhile.

        A snapshot answers at a block at least as new as the node's files, so the trader's lines
        of a dex read before it was asked for are in it; :meth:`_snapshots` tells
        which later ones are. The lines in it: their statuses are applied before the snapshot is
        diffed (exact final statuses; the diff then agrees), their fills are stored without
        touching the book (the snapshot's sizes include them: applied on top, a partial fill
        would count twice). The lines after it are applied on top of it."""
        self.waiting.setdefault(user, [])  # set already when a gap was found mid-chunk
        self.pipeline.open_gap(user, since)
        client = self.client or self.pipeline.clients[user]
        try:
            for dex, (orders, included) in (await self._snapshots(user, client)).items():
                taken = {id(item) for item in included}
                self.waiting[user][:] = [item for item in self.waiting[user] if id(item) not in taken]
                observed_at = datetime.now(UTC)
                self.pipeline.writer.submit(self.ops.waited(included, observed_at, statuses_only=True))
                try:  # source REST: the pipeline then recovers the gap from historicalOrders and fills
                    self.pipeline.on_orders(user, dex, orders, None, observed_at, source=schema.SOURCE_REST)
                    in_snapshot = True
                except FrameError as exc:  # its orders are left as they were; the history below still runs
                    in_snapshot = False
                    self.stats.bad_frames["node_resync"] += 1
                    log.warning("event=node_resync_bad_snapshot user=%s dex=%s error=%r", user, dex, str(exc))
                fills = [item for item in included if item[0] == "fills"]
                self.pipeline.writer.submit(self.ops.waited(fills, observed_at, in_snapshot=in_snapshot))
            self.pipeline.subscribed((user,))  # recover the gap, if no snapshot above has started it
        finally:
            waiting = self.waiting.pop(user, [])
            self.tasks.pop(user, None)
        done: Op = {"kind": "node_waiting_done", "doc": {"user": user}}
        self.pipeline.writer.submit([*self.ops.waited(waiting, datetime.now(UTC)), done])
        log.info("event=node_resynced user=%s waited=%d", user, len(waiting))

    async def _snapshots(self, user: str, client: InfoClient) -> dict[str, tuple[Any, list[Any]]]:
        """Per dex, a trader's open orders and the waiting lines the snapshot includes.

        No answer says at which block it was taken, and its server may be ahead of the files, so
        the lines the trader's resync holds back are split by when they were read: those before
        the request are in the snapshot; those read from the request until the reader has applied
        every line the files held :data:`RESYNC_SETTLE_S` after the answer may or may not be (an
        event just before the snapshot, written late); later ones happened after it. A dex's
        snapshot with a line of that dex in between is ambiguous and taken again; after
        :data:`RESYNC_TRIES` ambiguous ones the last is used with the lines read before its
        answer taken as in it (``node_resync_ambiguous``: a fill read between the answer and the
        catch-up may then count twice until the order's next status line). The dexes are asked
        together: one settle for all."""
        waiting = self.waiting[user]
        todo, done = list(self.dexes()), {}
        for _ in range(RESYNC_TRIES):
            asked = len(waiting)
            answers = await asyncio.gather(*(self._open_orders(user, dex, client) for dex in todo))
            answered = waiting[: len(waiting)]
            await asyncio.sleep(RESYNC_SETTLE_S)
            caught_up = await self._read_through(await asyncio.to_thread(self._files_end))
            raced = {_dex_of(item) for item in waiting[asked:]} if caught_up else set(todo)
            for dex, orders in zip(todo, answers, strict=True):
                if dex not in raced:
                    done[dex] = (orders, [item for item in waiting if _dex_of(item) == dex])
            todo = [dex for dex in todo if dex in raced]
            if not todo:
                return done
        for dex, orders in zip(todo, answers, strict=True):
            self.ambiguous += 1
            log.warning(
                "event=node_resync_ambiguous user=%s dex=%s tries=%d caught_up=%s "
                "note='lines read before the last answer taken as in the snapshot'",
                user,
                dex,
                RESYNC_TRIES,
                caught_up,
            )
            done[dex] = (orders, [item for item in answered if _dex_of(item) == dex])
        return done

    async def _open_orders(self, user: str, dex: str, client: InfoClient) -> Any:
        """``frontendOpenOrders`` of a trader on a dex, asked again until it answers."""
        while True:
            try:
                return await client.frontend_open_orders(user, dex)
            except RestError as exc:
                self._warn.log(
                    logging.WARNING, f"resync:{user}", "event=node_resync_retry user=%s error=%r", user, str(exc)
                )
                await asyncio.sleep(2.0)

    def _files_end(self) -> list[tuple[StreamState, Position]]:
        """Where each stream's files end now: the last complete line of its newest written file."""
        ends: list[tuple[StreamState, Position]] = []
        for state in self.streams.values():
            for path in reversed(hour_files(state.stream.folder)):
                try:
                    offset = last_line_end(path)
                except FileNotFoundError:  # pruned meanwhile
                    continue
                if offset:
                    ends.append((state, Position(path, offset)))
                    break
        return ends

    async def _read_through(self, ends: list[tuple[StreamState, Position]]) -> bool:
        """Wait until every line up to ``ends`` was applied (its trader's lines waiting, if it
        resyncs); False when that takes over :data:`RESYNC_CATCH_UP_S`."""
        deadline = time.monotonic() + RESYNC_CATCH_UP_S
        while not all(state.applied_through(end) for state, end in ends):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(self.poll_s)
        return True
