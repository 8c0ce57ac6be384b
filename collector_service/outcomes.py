"""Closed-order outcomes: ask the exchange how each vanished order ended.

An order leaving ``openOrders`` may have been filled, cancelled, margin-cancelled, ... The
closed event is stored at once with ``finalStatus: "unknown"`` (ingestion never waits for REST);
this worker then asks ``orderStatus`` (weight 2) within the egress's budget and records the
exchange's answer. A trader with many closes waiting is asked once for ``historicalOrders``
instead (weight 20 plus 1 per 20 rows, for up to 2000 outcomes): a busy market maker closes
more orders a minute than single lookups could keep up with under 1200 weight a minute.
Failures and an exhausted budget only delay the answer: the order stays in
the queue and is retried with backoff, and unresolved orders are re-queued at the next start.

Live traders' outcomes mostly come for free: the ``orderUpdates`` feed tells each status change
as it happens (:meth:`OutcomeResolver.learnt`), often a moment before the snapshot that shows the
order gone, so such an outcome waits here for its close, which is then stored with it
(:meth:`OutcomeResolver.fold`), instead of being asked for.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from collector_service.aio import wait_event
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import OrderStatusInner
from collector_service.logs import RateLimitedLog
from collector_service.rest import InfoClient, RestError
from collector_service.store import Op, final_op

log = logging.getLogger(__name__)

OPEN_STATUSES = frozenset({"open", "triggered"})
"""An order still live has not reached its outcome yet: resting (``open``), or a trigger order that
fired and keeps its oid through ``triggered`` until it fills or is cancelled (PROTOCOL.md §4.3)."""

MAX_ATTEMPTS = 8
RETRY_BASE_S = 2.0

EARLY_KEPT = 10_000
"""Outcomes told by the orderUpdates feed before the snapshot that closes their order, kept for
that close (the oldest are dropped beyond this many: their closes are then asked for)."""

BATCH_MIN = 10
"""From this many waiting closes of one trader, one historicalOrders call (weight 20 + rows/20)
is cheaper than single orderStatus calls (weight 2 each)."""


def latest_by_oid(rows: tuple[OrderStatusInner, ...]) -> dict[int, OrderStatusInner]:
    """historicalOrders may list one oid twice (open, then canceled): keep the newest status; of
    two at the same time, the final one (a trigger fires and fills in one block)."""
    found: dict[int, OrderStatusInner] = {}
    for row in rows:
        known = found.get(row.order.oid)
        if (known is None or row.statusTimestamp > known.statusTimestamp
                or (row.statusTimestamp == known.statusTimestamp
                    and (known.status in OPEN_STATUSES or row.status not in OPEN_STATUSES))):
            found[row.order.oid] = row
    return found


class OutcomeResolver:
    """A queue of ``(user, oid)`` whose final status is wanted, served by one info client."""

    def __init__(self, client: InfoClient, submit: Callable[[list[Op]], None]) -> None:
        self.client = client
        self.submit = submit
        self._queue: list[tuple[float, int, str, int]] = []
        self._queued: set[tuple[str, int]] = set()
        self._waiting: Counter[str] = Counter()  # queued closes per trader
        self._early: OrderedDict[tuple[str, int], tuple[str, int]] = OrderedDict()  # see learnt()
        self._wake = asyncio.Event()
        self._errors = RateLimitedLog(log)

    def __len__(self) -> int:
        return len(self._queued)

    def want(self, user: str, oid: int, attempt: int = 0, delay: float = 0.0) -> None:
        """Queue an order (idempotent while it is queued); one whose outcome the feed already
        told is recorded at once."""
        if (user, oid) in self._queued and attempt == 0:
            return
        early = self._early.pop((user, oid), None)
        if early is not None:
            self.client.stats.outcomes_from_feed += 1
            self.submit([final_op(user, oid, *early)])
            return
        if (user, oid) not in self._queued:
            self._queued.add((user, oid))
            self._waiting[user] += 1
        heapq.heappush(self._queue, (time.monotonic() + delay, attempt, user, oid))
        self._wake.set()

    def known(self, user: str, oid: int, status: str, status_ms: int) -> bool:
        """Record an outcome learnt elsewhere (a REST backfill); True if it was wanted."""
        if status in OPEN_STATUSES or (user, oid) not in self._queued:
            return False
        self._done(user, oid)
        self.submit([final_op(user, oid, status, status_ms)])
        return True

    def fold(self, event: dict[str, Any]) -> bool:
        """Give a ``closed`` event the outcome the feed already told, if it did: the event is then
        stored with it, with no write of its own. The old half of a replacement is left to
        :meth:`want`, whose write checks the link against the outcome."""
        if "replacedByOid" in event:
            return False
        early = self._early.pop((event["ethAddress"], event["oid"]), None)
        if early is None:
            return False
        event["finalStatus"], event["statusTimestamp"] = early[0], ms_to_datetime(early[1])
        self.client.stats.outcomes_from_feed += 1
        return True

    def wanted(self, user: str, oid: int) -> bool:
        return (user, oid) in self._queued

    def learnt(self, user: str, oid: int, status: str, status_ms: int) -> None:
        """The orderUpdates feed told how ``user``'s order ended: record it if its close is
        waiting, else keep it for the close that the next snapshot brings."""
        if status in OPEN_STATUSES:
            return
        if self.known(user, oid, status, status_ms):
            self.client.stats.outcomes_from_feed += 1
            return
        self._early[(user, oid)] = (status, status_ms)
        if len(self._early) > EARLY_KEPT:
            self._early.popitem(last=False)

    def _done(self, user: str, oid: int) -> None:
        self._queued.discard((user, oid))
        self._waiting[user] -= 1
        if self._waiting[user] <= 0:
            del self._waiting[user]

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, attempt, user, oid = self._queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._wake.clear()
                await wait_event(self._wake, wait)
                continue
            heapq.heappop(self._queue)
            if (user, oid) not in self._queued:
                continue  # resolved meanwhile
            if self._waiting[user] >= BATCH_MIN:
                await self._resolve_batch(user)
                if (user, oid) not in self._queued:
                    continue
            await self._resolve(user, oid, attempt)

    async def _resolve_batch(self, user: str) -> None:
        """Resolve every waiting close of ``user`` that ``historicalOrders`` still lists."""
        try:
            rows = await self.client.historical_orders(user)
        except RestError as exc:
            self._errors.log(logging.WARNING, "batch", "event=outcome_batch_failed user=%s error=%r", user, str(exc))
            return
        for oid, row in latest_by_oid(rows).items():
            self.known(user, oid, row.status, row.statusTimestamp)

    async def _resolve(self, user: str, oid: int, attempt: int) -> None:
        try:
            answer = await self.client.order_status(user, oid)
        except RestError as exc:
            self._retry(user, oid, attempt, str(exc))
            return
        if answer.status != "order" or answer.order is None:
            self._retry(user, oid, attempt, f"orderStatus answered {answer.status!r}")
            return
        if answer.order.status in OPEN_STATUSES:
            self._retry(user, oid, attempt, "exchange still reports the order open")
            return
        self._done(user, oid)
        self.submit([final_op(user, oid, answer.order.status, answer.order.statusTimestamp)])

    def _retry(self, user: str, oid: int, attempt: int, reason: str) -> None:
        if attempt + 1 >= MAX_ATTEMPTS:
            self._done(user, oid)
            log.warning(
                "event=outcome_unresolved user=%s oid=%d attempts=%d reason=%r "
                "note='stays finalStatus=unknown; retried at the next start'",
                user, oid, attempt + 1, reason,
            )
            return
        self._errors.log(logging.WARNING, "retry", "event=outcome_retry user=%s oid=%d attempt=%d reason=%r",
                         user, oid, attempt + 1, reason)
        self.want(user, oid, attempt + 1, delay=RETRY_BASE_S * (2**attempt))
