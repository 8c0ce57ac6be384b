"""The polling tier: traders beyond the WebSocket capacity, followed over the info API.

Hyperliquid streams at most about ten users per IP address (PROTOCOL.md §0.2); every other
listed trader is polled. A poll fetches ``frontendOpenOrders`` (weight 20) for the main dex and
for each HIP-3 dex the trader is active on, and ``clearinghouseState`` (weight 2) when an order
vanished or shrank (a fill may have moved a position), or every ``schema.POSITIONS_EVERY`` polls (an
order that filled at once never rested); the snapshots go through the same trackers and diff as pushed ones
(``source: "poll"``). Polls take turns oldest-first within the share of the address's REST weight
per minute kept for them (``InfoClient.poll_budget``), so a polled trader is refreshed about
every ``traders x weight / budget`` minutes, never faster than ``min_interval``. Polls go out
evenly spaced over that period (one every ``period / traders``), never in bursts: a burst fills
the budget's one-minute window, and the traders at its end slip by nearly a period.

An order that opens and closes between two polls is invisible to snapshot diffs: a sweep of each
polled trader's ``historicalOrders`` at least every ``sweep_interval`` records what the polls
missed, as gap recovery does after a reconnect. Sweeps are paid from the rest of the budget but
paced to at most :data:`SWEEP_SHARE` of it, evenly spaced too: however many traders are polled,
outcome lookups and gap recovery keep the other half (a long list sweeps each trader less often).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector_service import exchange, schema
from collector_service.aio import wait_event
from collector_service.events.wire import FrameError
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.outcomes import OPEN_STATUSES
from collector_service.pipeline import Pipeline
from collector_service.rest import InfoClient, RestError

log = logging.getLogger(__name__)

POLLS_IN_FLIGHT = 8
"""Polls of different traders in flight at once on one address."""

SWEEP_SHARE = 0.5
"""Share of the address's weight outside the polling share that sweeps may spend (on average)."""

DEX_ACTIVE_S = 3600.0
"""A HIP-3 dex stays in a polled trader's rounds this long after the sweeps last showed an order
there (the main dex, which also carries spot, is always polled)."""


@dataclass
class Polled:
    """What the poller knows of one trader."""

    user: str
    sweep_from: datetime | None  # the next sweep recovers from here (None: everything listed)
    added: float = field(default_factory=time.monotonic)
    last_poll: float = 0.0  # monotonic time its last poll's request went out; 0: never
    period: float | None = None  # seconds between its last two polls
    polls: int = 0
    last_sweep: float = 0.0
    dexes_seen: dict[str, float] = field(default_factory=dict)  # HIP-3 dex -> monotonic last seen
    busy: bool = False  # a poll of it is in flight
    last_done: float = 0.0  # monotonic end of its last poll


class Poller:
    """Polls one egress address's share of the traders, oldest first, within its budget share."""

    def __init__(
        self,
        client: InfoClient,
        pipeline: Pipeline,
        stats: Stats,
        *,
        min_interval: float,
        sweep_interval: float,
        dexes: Callable[[], list[str]],
    ) -> None:
        self.client = client
        self.pipeline = pipeline
        self.stats = stats
        self.budget = client.poll_budget
        self.min_interval = min_interval
        self.sweep_interval = sweep_interval
        self.dexes = dexes
        self.traders: dict[str, Polled] = {}
        self._polls = 0
        self._weight = 0.0
        self._next_poll = 0.0  # monotonic: polls start evenly spaced, not before this
        self._swept_at = 0.0  # monotonic start of the last sweep ...
        self._swept_cost = 0.0  # ... and its weight
        self._sweeps = 0
        self._sweep_weight = 0.0
        self._changed = asyncio.Event()
        self._warn = RateLimitedLog(log)

    # ----- membership ------------------------------------------------------------------------
    def add(self, user: str) -> None:
        """Start polling ``user`` (polled at once; swept from where its record stops)."""
        if user in self.traders:
            return
        since = self.pipeline.gaps.get(user, self.pipeline.last_seen.get(user))
        self.traders[user] = Polled(user, since)
        self.client.reserve_for_polling(True)
        self._changed.set()

    def remove(self, user: str) -> None:
        """Stop polling ``user`` (it moved to a live connection)."""
        self.traders.pop(user, None)
        self.client.reserve_for_polling(bool(self.traders))

    # ----- polling ---------------------------------------------------------------------------
    @property
    def weight_per_poll(self) -> float:
        """Weight a poll has cost on average (more for traders active on several dexes)."""
        if not self._polls:
            return schema.POLL_WEIGHT
        return self._weight / self._polls

    def expected_period_s(self) -> float:
        """The refresh period the budget allows for every trader polled now (seconds)."""
        return max(self.min_interval, len(self.traders) * self.weight_per_poll / self.budget.limit * 60.0)

    @property
    def sweep_limit(self) -> float:
        """Weight per minute the sweeps may spend: their share of what polling leaves."""
        client = self.client
        return client.total.limit * (1.0 - client.poll_share) * SWEEP_SHARE

    @property
    def weight_per_sweep(self) -> float:
        """Weight a sweep has cost on average (historicalOrders and fills, 20 each, and their
        per-item extras)."""
        if not self._sweeps:
            return 2.0 * exchange.WEIGHT_DEFAULT
        return self._sweep_weight / self._sweeps

    def expected_sweep_period_s(self) -> float:
        """How often each polled trader is swept: ``sweep_interval``, or longer when the sweeps of
        all of them would not fit in their share of the budget (seconds)."""
        return max(self.sweep_interval, len(self.traders) * self.weight_per_sweep / self.sweep_limit * 60.0)

    async def run(self) -> None:
        """Poll and sweep until cancelled. Several polls are in flight at once (round trips, not
        the budget, would otherwise bound the rate), never two of one trader."""
        sweeper = asyncio.create_task(self._sweep_loop(), name=f"sweeps {self.client.egress}")
        slots = asyncio.Semaphore(POLLS_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                polled = min((t for t in self.traders.values() if not t.busy), key=lambda t: t.last_poll,
                             default=None)
                # oldest first, one poll every period / traders: an even cadence, where spending
                # the budget as fast as its window lets would poll in bursts and then stall
                now = time.monotonic()
                wait = 1.0 if polled is None else max(self._next_poll, polled.last_poll + self.min_interval) - now
                if wait > 0:
                    self._changed.clear()
                    await wait_event(self._changed, min(wait, 1.0))
                    continue
                assert polled is not None
                await slots.acquire()
                polled.busy = True
                dexes = self._dexes_of(polled)
                await self.budget.take(exchange.WEIGHT_DEFAULT * len(dexes))
                # the poll is timed here, as its requests go out (not before the wait for budget)
                sent = time.monotonic()
                # on a schedule: a start the event loop made late does not push every later one
                # back (up to one spacing is caught up; more would be a burst)
                spacing = self.expected_period_s() / max(1, len(self.traders))
                self._next_poll = max(self._next_poll, sent - spacing) + spacing
                if polled.last_poll:
                    polled.period = sent - polled.last_poll
                polled.last_poll = sent
                task = asyncio.create_task(self.poll(polled, dexes))
                running.add(task)
                task.add_done_callback(functools.partial(self._done, polled, running, slots))
        finally:
            sweeper.cancel()
            for task in running:
                task.cancel()
            await asyncio.gather(sweeper, *running, return_exceptions=True)

    def _done(self, polled: Polled, running: set[asyncio.Task[None]], slots: asyncio.Semaphore,
              task: asyncio.Task[None]) -> None:
        running.discard(task)
        slots.release()
        polled.busy = False
        polled.last_done = time.monotonic()
        self._changed.set()

    def _dexes_of(self, polled: Polled) -> list[str]:
        """The main dex, plus each HIP-3 dex where the trader has open orders or positions, or
        had orders lately (a poll of every dex for every trader would multiply the cost)."""
        now = time.monotonic()
        found = [schema.MAIN_DEX]
        for dex in self.dexes():
            if not dex:
                continue
            book = self.pipeline.books.get((polled.user, dex))
            positions = self.pipeline.positions.get((polled.user, dex))
            if (book is not None and book.orders) or (positions is not None and positions.keys) \
                    or now - polled.dexes_seen.get(dex, -DEX_ACTIVE_S) < DEX_ACTIVE_S:
                found.append(dex)
        return found

    async def poll(self, polled: Polled, dexes: list[str]) -> None:
        """One refresh of a trader: open orders (and positions) of each dex it uses; the open
        orders' weight is already paid (see :meth:`run`)."""
        user = polled.user
        polled.polls += 1
        try:
            self._polls += 1
            self._weight += exchange.WEIGHT_DEFAULT * len(dexes)
            answers = await asyncio.gather(*(self.client.frontend_open_orders(user, dex, paid=True)
                                             for dex in dexes))
            if self.traders.get(user) is not polled:
                return  # moved to a live connection meanwhile (maybe back again): the answer is stale
            observed_at = datetime.now(UTC)
            filled_maybe = False  # an order gone or smaller: a fill may have moved a position
            for dex, items in zip(dexes, answers, strict=True):
                events = self.pipeline.on_orders(user, dex, items, None, observed_at, schema.SOURCE_POLL)
                filled_maybe |= any(e["action"] != schema.ACTION_NEW for e in events)
            self.stats.polls["orders"] += 1
            if filled_maybe or polled.polls % schema.POSITIONS_EVERY == 1:
                self._weight += exchange.WEIGHT_LIGHT * len(dexes)
                states = await asyncio.gather(*(self.client.clearinghouse_state(user, dex, self.budget)
                                                for dex in dexes))
                if self.traders.get(user) is not polled:
                    return
                observed_at = datetime.now(UTC)
                for dex, state in zip(dexes, states, strict=True):
                    self.pipeline.on_positions(user, dex, state, observed_at, schema.SOURCE_POLL)
                self.stats.polls["positions"] += 1
        except RestError as exc:
            self.stats.polls["failed"] += 1
            self._warn.log(logging.WARNING, "poll", "event=poll_failed user=%s error=%r", user, str(exc))
        except FrameError as exc:
            self.stats.bad_frames[exc.kind] += 1
            self._warn.log(logging.WARNING, "poll_bad", "event=bad_poll_answer user=%s kind=%s detail=%r",
                           user, exc.kind, str(exc))

    # ----- sweeps ----------------------------------------------------------------------------
    async def _sweep_loop(self) -> None:
        while True:
            polled = min(self.traders.values(), key=lambda t: t.last_sweep, default=None)
            now = time.monotonic()
            # oldest first, no faster than the sweeps' share of the budget pays, and evenly spaced
            # over the interval; a trader new to polling (its gap to recover) goes next at once
            spacing = self._swept_cost / self.sweep_limit * 60.0
            if polled is not None and polled.last_sweep:
                spacing = max(spacing, self.sweep_interval / len(self.traders))
            due = 0.0 if polled is None else polled.last_sweep + self.sweep_interval
            wait = 1.0 if polled is None else max(self._swept_at + spacing, due) - now
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))  # (a trader added meanwhile is seen within a second)
                continue
            assert polled is not None
            self._swept_at, self._swept_cost = now, self.weight_per_sweep
            try:
                self._swept_cost = await self.sweep(polled)
            except Exception as exc:  # one trader's bad answer must not stop every sweep
                polled.last_sweep = time.monotonic()
                self._warn.log(logging.ERROR, "sweep", "event=sweep_failed user=%s error=%r", polled.user, exc)

    async def sweep(self, polled: Polled) -> float:
        """Record what the polls of one trader missed since its last sweep (historicalOrders);
        return the weight it cost (its calls and their per-item extras)."""
        rows = await self.pipeline.recover(polled.user, polled.sweep_from, keep_watching=True)
        polled.last_sweep = now = time.monotonic()
        polled.sweep_from = self.pipeline.gaps.get(polled.user, polled.sweep_from)
        polled_dexes = set(self._dexes_of(polled))
        for row in rows:
            dex = schema.dex_of(row.order.coin)
            if dex:
                polled.dexes_seen[dex] = now
            if row.status in OPEN_STATUSES and dex not in polled_dexes:
                polled.last_poll = 0.0  # an order resting where its polls do not look: poll it now
                self._changed.set()
        self.stats.polls["sweeps"] += 1
        # historicalOrders, then the fills of the stretch, then twapHistory
        calls = 1 + self.pipeline.record_fills + self.pipeline.record_twaps
        cost = calls * exchange.WEIGHT_DEFAULT + len(rows) // exchange.ITEMS_PER_EXTRA_WEIGHT
        self._sweeps += 1
        self._sweep_weight += cost
        return float(cost)

    # ----- freshness -------------------------------------------------------------------------
    def freshness(self) -> dict[str, Any]:
        """The polled tier's figures for /healthz and /metrics (seconds)."""
        now = time.monotonic()
        periods = [t.period for t in self.traders.values() if t.period is not None]
        return {
            "traders": len(self.traders),
            "expected_period_s": round(self.expected_period_s(), 1),
            "weight_per_poll": round(self.weight_per_poll, 1),
            "period_median_s": round(statistics.median(periods), 1) if periods else None,
            "period_worst_s": round(max(periods), 1) if periods else None,
            "stalest_snapshot_age_s": round(max((now - (t.last_poll or t.added) for t in self.traders.values()),
                                                default=0.0), 1),
            "sweep_lag_s": round(max((now - (t.last_sweep or t.added) for t in self.traders.values()),
                                     default=0.0), 1),
            "expected_sweep_period_s": round(self.expected_sweep_period_s(), 1),
            "budget_per_minute": self.budget.limit,
        }
