"""From decoded snapshots to stored operations: trackers, outcomes and gap recovery per trader.

Feeds call :meth:`Pipeline.on_orders` and :meth:`Pipeline.on_positions` for every snapshot; the
pipeline diffs it, journals the resulting operations through the writer, and queues the
outcome of every closed order. After each (re)connect it recovers, over REST, the orders that
opened and closed while nobody was watching.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from collector_service import schema
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.outcomes import OPEN_STATUSES, OutcomeResolver, latest_by_oid
from collector_service.positions import PositionBook
from collector_service.rest import InfoClient, RestError
from collector_service.store import Writer, order_ops, position_ops
from collector_service.tracker import OrderBook, build_event, ms_to_datetime
from collector_service.wire import OrderItems, OrderStatusInner

log = logging.getLogger(__name__)

GAP_MARGIN = timedelta(seconds=60)
"""Recover orders closed a little before the last snapshot too: clocks and pushes are not exact."""

RECOVERY_RETRY_MAX_S = 15.0
"""A failed recovery is retried with backoff up to this pause, until it succeeds: the REST
weight budget, not the retry schedule, keeps the calls within the exchange's limits."""


def recovered_events(
    user: str, row: OrderStatusInner, recovered_at: datetime
) -> list[dict[str, Any]]:
    """The ``new`` and ``closed`` events of an order seen only over REST, dated by the exchange."""
    placed = ms_to_datetime(row.order.timestamp)
    ended = ms_to_datetime(row.statusTimestamp)
    new = build_event(user, row.order, schema.ACTION_NEW, 0, source=schema.SOURCE_REST,
                      observed_at=placed, server_time=None)
    closed = build_event(user, row.order, schema.ACTION_CLOSED, 1, source=schema.SOURCE_REST,
                         observed_at=ended, server_time=None)
    closed["finalStatus"] = row.status
    closed["statusTimestamp"] = ended
    new["recoveredAt"] = closed["recoveredAt"] = recovered_at
    return [new, closed]


class Pipeline:
    """Per-trader state and the routes from snapshots to the writer."""

    def __init__(
        self,
        writer: Writer,
        stats: Stats,
        clients: Mapping[str, InfoClient],
        resolvers: Mapping[str, OutcomeResolver],
        *,
        record_orders: bool = True,
    ) -> None:
        self.writer = writer
        self.stats = stats
        self.clients = clients
        self.resolvers = resolvers
        self.record_orders = record_orders
        self.books = {user: OrderBook(user) for user in clients}
        self.positions = {user: PositionBook(user) for user in clients}
        self.last_seen: dict[str, datetime] = {}
        self.gaps: dict[str, datetime | None] = {}  # gaps not recovered yet: when each began
        self._needs_recovery: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._warn = RateLimitedLog(log)

    def load(
        self,
        open_orders: Mapping[str, list[dict[str, Any]]],
        positions: Mapping[str, list[dict[str, Any]]],
        last_seen: Mapping[str, datetime],
        gaps: Mapping[str, datetime | None],
    ) -> None:
        """Start from what MongoDB already holds (restart reconciliation)."""
        for user, docs in open_orders.items():
            if user in self.books:
                self.books[user].load(docs)
        for user, docs in positions.items():
            if user in self.positions:
                self.positions[user].load(docs)
        self.last_seen.update({u: t for u, t in last_seen.items() if u in self.books})
        self.gaps.update({u: t for u, t in gaps.items() if u in self.books})

    @property
    def open_orders(self) -> int:
        return sum(len(book.orders) for book in self.books.values())

    def on_connected(self, users: tuple[str, ...]) -> None:
        """A connection (re)subscribed these users: recover their gap once their first
        snapshot is in. The gap is journaled until recovered, so it survives a crash."""
        for user in users:
            if user not in self.gaps:  # an older gap not recovered yet starts earlier
                since = self.last_seen.get(user)
                self.gaps[user] = since
                self.writer.submit([{"kind": "gap", "doc": {"_id": user, "since": since}}])
        self._needs_recovery.update(users)

    def on_orders(self, user: str, orders: OrderItems, server_ms: int | None, observed_at: datetime) -> None:
        """Apply one open-orders snapshot of ``user`` (raw JSON; FrameError if it is invalid)."""
        book = self.books.get(user)
        if book is None:
            self._warn.log(logging.WARNING, f"foreign:{user}", "event=frame_for_untracked_user user=%s", user)
            return
        if book.is_stale(server_ms):
            self.stats.frames_stale += 1
            return
        if self.record_orders:
            events = book.apply_raw(orders, observed_at=observed_at, server_ms=server_ms)
            if events:
                self.writer.submit(order_ops(events))
                resolver = self.resolvers[user]
                for event in events:
                    if event["action"] == schema.ACTION_CLOSED:
                        resolver.want(user, event["oid"])
            else:
                self.stats.frames_unchanged += 1
        if user in self._needs_recovery:
            self._needs_recovery.discard(user)
            self.spawn(self.recover(user, self.gaps.get(user)))
        self.last_seen[user] = observed_at

    def on_positions(self, user: str, state: msgspec.Raw, observed_at: datetime) -> None:
        """Apply one clearinghouse snapshot of ``user`` (raw JSON; FrameError if it is invalid)."""
        book = self.positions.get(user)
        if book is None:
            return
        docs = book.apply_raw(state, observed_at=observed_at)
        if docs:
            self.writer.submit(position_ops(docs))

    async def recover(self, user: str, since: datetime | None) -> None:
        """Store orders that opened and closed since ``since`` without a snapshot showing them,
        and outcomes of orders closed meanwhile, from ``historicalOrders``."""
        attempt = 0
        while True:
            try:
                rows = await self.clients[user].historical_orders(user)
                break
            except RestError as exc:
                attempt += 1
                pause = min(RECOVERY_RETRY_MAX_S, 2.0**attempt) * random.uniform(0.8, 1.2)
                self._warn.log(logging.WARNING, f"recover:{user}",
                               "event=recovery_retry user=%s attempt=%d retry_in_s=%.0f error=%r",
                               user, attempt, pause, str(exc))
                await asyncio.sleep(pause)
        self.writer.submit(order_ops(self.recovered(user, rows, since)))
        if self.gaps.get(user, since) == since:  # no older gap was opened meanwhile
            self.gaps.pop(user, None)
            self.writer.submit([{"kind": "gap_recovered", "doc": {"_id": user}}])

    def recovered(
        self, user: str, rows: tuple[OrderStatusInner, ...], since: datetime | None
    ) -> list[dict[str, Any]]:
        """Events for closed orders the WebSocket never showed (duplicates of events already
        stored are harmless: the unique index drops them)."""
        now = datetime.now(UTC)
        cutoff_ms = int((since - GAP_MARGIN).timestamp() * 1000) if since is not None else None
        tracked = self.books[user].orders
        resolver = self.resolvers[user]
        events: list[dict[str, Any]] = []
        for oid, row in latest_by_oid(rows).items():
            if row.status in OPEN_STATUSES:
                continue
            resolver.known(user, oid, row.status, row.statusTimestamp)
            if oid in tracked or (cutoff_ms is not None and row.statusTimestamp < cutoff_ms):
                continue
            events += recovered_events(user, row, now)
        return events

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
