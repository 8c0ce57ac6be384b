"""Pure tests: the capacity plan with polling and pinned traders, activity ranking, tier moves
with hysteresis, and the REST budget's sliding window."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from collector_service.events.activity import HALF_LIFE_S, Activity
from collector_service.plan import REFUSED_RETRY_S, plan_connections
from collector_service.rest import WINDOW_S, WeightBudget
from collector_service.sources.tiers import MIN_STAY_S, REBALANCE_S, Tiers

TRADERS = [f"0x{i:040x}" for i in range(25)]


def test_plan_polls_beyond_capacity_and_pins_first() -> None:
    plan = plan_connections(TRADERS, [None], max_users_per_ip=10, clients=2, pinned=[TRADERS[20]], poll=True)
    assert TRADERS[20] in plan.live() and len(plan.live()) == 10
    assert plan.polled == {None: tuple(t for t in TRADERS[9:] if t != TRADERS[20])}
    assert plan.over_capacity == () and sorted(plan.users_by_egress()[None]) == sorted(TRADERS)
    two = plan_connections(TRADERS, ["127.0.0.2", "127.0.0.3"], max_users_per_ip=10, clients=2, poll=True)
    assert [len(u) for u in two.polled.values()] == [3, 2] and len(two.live()) == 20
    off = plan_connections(TRADERS, [None], max_users_per_ip=10, clients=2, poll=False)
    assert off.polled == {} and off.over_capacity == tuple(TRADERS[10:])


def test_activity_is_events_per_hour_decayed() -> None:
    activity = Activity()
    activity.record("a", 10, now=0.0)
    assert activity.per_hour("a", now=0.0) == pytest.approx(10 * math.log(2) / HALF_LIFE_S * 3600)
    assert activity.per_hour("a", now=HALF_LIFE_S) == pytest.approx(activity.per_hour("a", now=0.0) / 2)
    assert activity.per_hour("nobody", now=5.0) == 0.0


class FakeFeed:
    def __init__(self, users: list[str]) -> None:
        self.users = list(users)
        self.refused: dict[str, float] = {}
        self.capped: dict[str, float] = {}
        self.on_refused: Callable[[], None] | None = None

    def add_user(self, user: str) -> None:
        self.users.append(user)

    def remove_user(self, user: str) -> None:
        self.users.remove(user)


class FakePoller:
    def __init__(self, users: list[str]) -> None:
        self.traders = dict.fromkeys(users)

    def add(self, user: str) -> None:
        self.traders[user] = None

    def remove(self, user: str) -> None:
        self.traders.pop(user, None)


class FakePipeline:
    def __init__(self) -> None:
        self.activity = Activity()
        self.last_seen: dict[str, datetime] = {}
        self.gaps: list[str] = []

    def open_gap(self, user: str, since: datetime | None) -> None:
        self.gaps.append(user)


def tiers(live: list[str], polled: list[str], events: dict[str, int], pinned: tuple[str, ...] = (),
          capacity: int = 2) -> tuple[Tiers, FakeFeed, FakePoller, FakePipeline, float]:
    feed, poller, pipeline = FakeFeed(live), FakePoller(polled), FakePipeline()
    t = Tiers([feed], poller, pipeline, pinned, capacity)  # type: ignore[list-item, arg-type]
    now = time.monotonic()
    for user, n in events.items():
        pipeline.activity.record(user, n, now)
    return t, feed, poller, pipeline, now + MIN_STAY_S


def test_busier_polled_trader_takes_the_quietest_live_slot_once() -> None:
    t, feed, poller, pipeline, later = tiers(["a", "b"], ["c", "d"], {"a": 1, "b": 50, "c": 100, "d": 60})
    assert t.rebalance(later - MIN_STAY_S / 2) == []  # nobody has stayed long enough yet
    assert t.rebalance(later) == [("a", "polled"), ("c", "live")]  # d is not clearly busier than b
    assert feed.users == ["b", "c"] and set(poller.traders) == {"a", "d"} and pipeline.gaps == ["a", "c"]
    assert t.rebalance(later + 1) == []  # a and c just moved: no flapping


def test_hysteresis_and_pinned_traders() -> None:
    t, feed, *_, later = tiers(["a", "b"], ["c"], {"a": 8, "b": 9, "c": 10})
    assert t.rebalance(later) == []  # 10 events is not clearly more than 8
    t, feed, *_, later = tiers(["a", "b"], ["c"], {"a": 1, "b": 50, "c": 100}, pinned=("a",))
    assert t.rebalance(later) == [("b", "polled"), ("c", "live")] and feed.users == ["a", "c"]


def test_refused_traders_are_polled_and_capacity_shrinks_for_a_while() -> None:
    t, feed, poller, _, later = tiers(["a", "b"], ["c"], {"a": 100, "c": 1}, capacity=2)
    feed.refused["b"] = feed.capped["b"] = later + 300  # the exchange's user cap
    assert t.rebalance(later) == [("b", "polled")]  # the free slot is not refilled
    assert t.capacity == 1 and feed.users == ["a"] and set(poller.traders) == {"b", "c"}
    assert t.rebalance(later + REFUSED_RETRY_S - 1) == [] and t.capacity == 1
    assert t.rebalance(later + REFUSED_RETRY_S) == [("c", "live")] and t.capacity == 2  # the slot tried again


def test_a_lost_ack_polls_the_trader_without_lowering_capacity() -> None:
    t, feed, _poller, _, later = tiers(["a", "b"], ["c"], {"a": 100, "c": 1}, capacity=2)
    feed.refused["b"] = later + 300  # no ack within the timeout, not a cap error
    assert t.rebalance(later) == [("b", "polled"), ("c", "live")] and t.capacity == 2


async def test_a_refused_trader_is_polled_at_once_not_at_the_next_round() -> None:
    t, feed, poller, _, _ = tiers(["a", "b"], ["c"], {"a": 100, "c": 1}, capacity=2)
    rounds = asyncio.create_task(t.run())
    try:
        await asyncio.sleep(0)  # the tiers wait for their next round (30 s away)
        feed.refused["b"] = time.monotonic() + 300  # as FeedConnection._refuse does, then tells
        assert feed.on_refused is not None
        feed.on_refused()
        async with asyncio.timeout(REBALANCE_S / 3):
            while "b" not in poller.traders:
                await asyncio.sleep(0.01)
        assert feed.users == ["a"]
    finally:
        rounds.cancel()


async def test_weight_budget_never_exceeds_the_window() -> None:
    total = WeightBudget(100)
    polls = WeightBudget(60, parent=total)
    other = WeightBudget(40, parent=total)
    for _ in range(3):
        await polls.take(20)
    assert polls.remaining == 0 and total.remaining == 40
    assert polls._wait_s(20) == pytest.approx(WINDOW_S, abs=0.5)  # the oldest spend must expire first
    await other.take(40)  # the other share is untouched by the polls
    assert total.remaining == 0 and other._wait_s(1) > 59
    total.exhaust()
    assert total._wait_s(0) > 4 and total._wait_s(0) <= WINDOW_S
