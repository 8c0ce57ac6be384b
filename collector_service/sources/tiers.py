"""Who gets the live slots: the busiest traders stream, the rest are polled.

Activity is each trader's order events per hour, exponentially decayed (half-life 30 minutes).
Every :data:`REBALANCE_S` seconds, per egress address, the most active polled trader takes the
slot of the least active live one when it is clearly busier (hysteresis, and a minimum stay in
each tier, so traders do not flap); pinned traders never leave their slots. A move is a
reconnect for the promoted trader (its first snapshot is reconciled against the tracked state
and the gap since it was last seen is recovered) and an immediate first poll for the demoted
one: nothing is lost or duplicated. Traders the exchange refuses (its per-IP cap below the
configured one) are polled instead at once (not at the next round), and the address's live
capacity shrinks to what it accepts until the slots are tried again after five minutes; traders
whose subscription was not acknowledged are polled too, without lowering the capacity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from collector_service.aio import wait_event
from collector_service.plan import REFUSED_RETRY_S

if TYPE_CHECKING:
    from collector_service.pipeline import Pipeline
    from collector_service.sources.polling import Poller
    from collector_service.sources.websocket import FeedConnection

log = logging.getLogger(__name__)

REBALANCE_S = 30.0
MIN_STAY_S = 120.0
"""A trader stays at least this long in a tier before it may move."""
PROMOTE_FACTOR = 1.5
PROMOTE_MARGIN = 2.0
"""A polled trader is promoted only if its events/hour exceed 1.5 x the live one's + 2."""
MAX_MOVES = 2
"""Swaps per address per round (each is an unsubscribe and a subscribe)."""

class Tiers:
    """Moves traders between one address's live connections and its poller."""

    def __init__(self, feeds: list[FeedConnection], poller: Poller, pipeline: Pipeline, pinned: Iterable[str],
                 capacity: int) -> None:
        self.feeds = feeds
        self.poller = poller
        self.pipeline = pipeline
        self.pinned = frozenset(pinned)
        self.capacity = self.configured = capacity
        self.lowered_at = 0.0
        self.started = time.monotonic()
        self.since: dict[str, float] = {}  # user -> when it entered its tier (default: the start)
        self._refused = asyncio.Event()
        for feed in feeds:
            feed.on_refused = self._refused.set

    @property
    def live(self) -> list[str]:
        return [u for feed in self.feeds for u in feed.users]

    async def run(self) -> None:
        """Rebalance every :data:`REBALANCE_S`, and at once when the exchange refused someone."""
        while True:
            await wait_event(self._refused, REBALANCE_S)
            self._refused.clear()
            self.rebalance()

    def _stayed(self, user: str, now: float) -> bool:
        return now - self.since.get(user, self.started) >= MIN_STAY_S

    def rebalance(self, now: float | None = None) -> list[tuple[str, str]]:
        """One round: move refused traders to polling, fill free slots, swap clearly busier
        polled traders in; return the moves as ``(user, "live"|"polled")``."""
        now = time.monotonic() if now is None else now
        moves: list[tuple[str, str]] = []
        if self.capacity < self.configured and now - self.lowered_at >= REFUSED_RETRY_S:
            self.capacity = self.configured  # try the slots again: the other user of the IP may be gone
        for feed in self.feeds:
            refused = [u for u in feed.users if feed.refused.get(u, 0.0) > now]
            if not refused:
                continue
            capped = [u for u in refused if feed.capped.get(u, 0.0) > now]
            if capped:  # the exchange's user cap, not a lost ack: fewer slots than configured
                self.capacity = min(self.capacity, len(self.live) - len(capped))
                self.lowered_at = now
            for user in refused:
                self._demote(feed, user, now)
                moves.append((user, "polled"))
            log.warning("event=live_refused polled_instead=%s capacity=%d", ",".join(refused), self.capacity)
        activity = self.pipeline.activity
        polled = sorted((u for u in self.poller.traders if self._stayed(u, now)),
                        key=lambda u: activity.per_hour(u, now), reverse=True)
        while polled and len(self.live) < self.capacity and self.feeds:
            user = polled.pop(0)
            self._promote(min(self.feeds, key=lambda f: len(f.users)), user, now)
            moves.append((user, "live"))
        live = sorted(((u, feed) for feed in self.feeds for u in feed.users
                       if u not in self.pinned and self._stayed(u, now)),
                      key=lambda item: activity.per_hour(item[0], now))
        filled = len(moves)
        for user in polled:
            if (len(moves) - filled) // 2 >= MAX_MOVES or not live:
                break
            quiet, feed = live[0]
            busy, calm = activity.per_hour(user, now), activity.per_hour(quiet, now)
            if busy <= calm * PROMOTE_FACTOR + PROMOTE_MARGIN:
                break  # polled traders are sorted busiest first: no later one qualifies
            live.pop(0)
            self._demote(feed, quiet, now)
            self._promote(feed, user, now)
            moves += [(quiet, "polled"), (user, "live")]
            log.info("event=tier_swap live=%s live_per_hour=%.1f polled=%s polled_per_hour=%.1f",
                     user, busy, quiet, calm)
        return moves

    def _demote(self, feed: FeedConnection, user: str, now: float) -> None:
        feed.remove_user(user)
        self.pipeline.open_gap(user, self.pipeline.last_seen.get(user))
        self.poller.add(user)
        self.since[user] = now

    def _promote(self, feed: FeedConnection, user: str, now: float) -> None:
        self.poller.remove(user)
        self.pipeline.open_gap(user, self.pipeline.last_seen.get(user))
        feed.add_user(user)
        self.since[user] = now
