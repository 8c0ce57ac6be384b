"""Gap recovery over REST (``Pipeline.recover``): the real pipeline, its outcome resolver and
info client, against the simulator's info API or real-shaped ``historicalOrders`` answers; the
operations it journals are captured instead of written."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from collector_service import exchange
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import OrderStatusInner, historical_orders_decoder, order_items_decoder
from collector_service.metrics import Stats, registry_for
from collector_service.outcomes import OutcomeResolver, latest_by_oid
from collector_service.pipeline import Pipeline
from collector_service.rest import InfoClient
from collector_service.sources.polling import Polled, Poller
from exchange_sim import ExchangeSim, SimConfig
from tests.collector.frames import USER, encode, frontend_orders
from tests.collector.harness import eventually

T0 = datetime(2026, 12, 7, 1, 5, tzinfo=UTC)
CLOID = "0x" + "cd" * 16


class Journaled:
    """Stands in for the writer: the operations the pipeline submits."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []

    def submit(self, ops: list[dict[str, Any]]) -> None:
        self.ops += ops

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [op["doc"] for op in self.ops if op["kind"] == kind]

    def events(self) -> dict[tuple[int, str], dict[str, Any]]:
        return {(doc["oid"], doc["eventKey"]): doc for doc in self.of("order")}


def pipeline(client: Any, user: str, *, dexes: Iterable[str] = ("",), fills: bool = False
             ) -> tuple[Pipeline, Journaled]:
    journal = Journaled()
    resolver = OutcomeResolver(client, journal.submit)
    followed = list(dexes)
    return Pipeline(journal, Stats(), {user: client}, {user: resolver},  # type: ignore[arg-type]
                    dexes=lambda: followed, record_fills=fills, record_twaps=False), journal


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def row(oid: int, status: str, placed: datetime, ended: datetime, *, cloid: str | None = None,
        trigger: bool = False) -> dict[str, Any]:
    """A historicalOrders row: the real captured frontend order with these fields."""
    order = copy.deepcopy(frontend_orders()[0])
    order.update(children=[], oid=oid, cloid=cloid, timestamp=ms(placed))
    if trigger:
        order.update(isTrigger=True, orderType="Stop Market", triggerPx="9.0", triggerCondition="Price below 9.0")
    return {"order": order, "status": status, "statusTimestamp": ms(ended)}


class ScriptedInfo:
    """An info client answering ``historicalOrders`` with the given real-shaped answers in turn;
    the first answer waits until :meth:`release` (a recovery still running)."""

    def __init__(self, *answers: list[dict[str, Any]], hold_first: bool = False) -> None:
        self.answers = [historical_orders_decoder.decode(encode(answer)) for answer in answers]
        self.asked = 0
        self.gate = asyncio.Event()
        if not hold_first:
            self.gate.set()

    def release(self) -> None:
        self.gate.set()

    async def historical_orders(self, user: str) -> tuple[OrderStatusInner, ...]:
        self.asked += 1
        if self.asked == 1:
            await self.gate.wait()
        return self.answers[self.asked - 1]


async def test_a_reconnect_during_a_recovery_keeps_the_gap_for_the_next_one() -> None:
    """Issue 20 item 6: gap from 01:05; a reconnect while its recovery runs; the new connection's
    first snapshot at 01:14. The second recovery still starts at 01:05, so an order that opened
    and closed at 01:07 and 01:08, after the first recovery had its answer, is recorded."""
    gap_only = row(501, "canceled", T0 + timedelta(minutes=2), T0 + timedelta(minutes=3))
    client = ScriptedInfo([], [gap_only], hold_first=True)
    pipe, journal = pipeline(client, USER)
    pipe.last_seen[USER] = T0
    pipe.on_connected((USER,))
    pipe.subscribed((USER,))  # the first recovery asks, and its answer is slow
    await eventually(lambda: client.asked == 1, what="first recovery asking")
    pipe.on_connected((USER,))  # the connection dropped and came back meanwhile
    pipe.on_orders(USER, "", (), None, T0 + timedelta(minutes=9))  # its first snapshot: 01:14
    client.release()
    await eventually(lambda: not pipe._tasks, what="first recovery done")
    assert pipe.gaps == {USER: T0}
    pipe.subscribed((USER,))  # the new connection's subscriptions are live
    await eventually(lambda: client.asked == 2 and not pipe._tasks, what="second recovery done")
    assert journal.events()[(501, "closed")]["finalStatus"] == "canceled"
    assert pipe.gaps == {}


async def test_a_triggered_order_is_still_live() -> None:
    """Issue 20 item 7: a trigger order keeps its oid through ``triggered`` (PROTOCOL.md §4.3). A
    recovery seeing it triggered records no close, and its real close later is recorded."""
    placed, fired, filled = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)
    triggered = row(601, "triggered", placed, fired, trigger=True)
    done = row(601, "filled", placed, filled, trigger=True)
    client = ScriptedInfo([triggered, row(601, "open", placed, placed, trigger=True)], [done, triggered])
    pipe, journal = pipeline(client, USER)
    await pipe.recover(USER, T0)
    assert journal.of("order") == []  # live: a snapshot shows it
    assert pipe.resolvers[USER].known(USER, 601, "triggered", ms(fired)) is False
    pipe.resolvers[USER].want(USER, 601)
    await pipe.recover(USER, T0)
    assert journal.events()[(601, "closed")]["finalStatus"] == "filled"
    assert journal.of("final") == [{"ethAddress": USER, "oid": 601, "finalStatus": "filled",
                                    "statusTimestamp": filled}]
    # a trigger fires and fills in one block: of two statuses at one time the final one counts
    same_block = historical_orders_decoder.decode(encode([row(602, "filled", placed, fired, trigger=True),
                                                          row(602, "triggered", placed, fired, trigger=True)]))
    assert latest_by_oid(same_block)[602].status == "filled"


async def test_modify_of_an_order_never_seen_open_is_linked_from_the_history() -> None:
    """Issue 20, outcome-based linking: the old order was placed and modified while nobody
    watched; the snapshot shows only the replacement, and the recovery's history names the
    old order (``canceled``) and its replacement (same cloid, placed in the cancel's millisecond)."""
    placed, modified = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    old = row(701, "canceled", placed, modified, cloid=CLOID)
    new = row(702, "open", modified, modified, cloid=CLOID)
    client = ScriptedInfo([new, old, row(701, "open", placed, placed, cloid=CLOID)])
    pipe, journal = pipeline(client, USER)
    pipe.last_seen[USER] = T0
    pipe.on_connected((USER,))
    seen = pipe.on_orders(USER, "", order_items_decoder.decode(encode([new["order"]])), None,
                          T0 + timedelta(minutes=3))
    assert [(e["oid"], e["action"]) for e in seen] == [(702, "new")]
    pipe.subscribed((USER,))
    await eventually(lambda: not pipe._tasks, what="recovery done")
    events = journal.events()
    assert (events[(701, "new")]["source"], events[(701, "closed")]["finalStatus"]) == ("rest", "canceled")
    assert (events[(701, "closed")]["replacedByOid"], events[(701, "closed")]["replaceMatch"]) == (702, "cloid")
    assert journal.of("link") == [{"ethAddress": USER, "oid": 701, "replacedByOid": 702, "replaceMatch": "cloid"}]


async def _sim_recovery(sim: ExchangeSim, user: str, since: datetime, **kwargs: Any) -> tuple[Pipeline, Journaled]:
    client = InfoClient(sim.info_url, None, exchange.REST_WEIGHT_PER_MINUTE, Stats())
    pipe, journal = pipeline(client, user, **kwargs)
    try:
        await pipe.recover(user, since)
    finally:
        await client.close()
    return pipe, journal


async def test_a_history_cut_at_2000_rows_reports_the_stretch_it_cannot_show(caplog: pytest.LogCaptureFixture
                                                                             ) -> None:
    """Issue 20 item 5: 1100 orders placed and cancelled during a gap are 2200 statuses; the
    exchange (and the simulator) lists the newest 2000, so the first orders of the gap cannot be
    recovered. The recovery says so: log line, counter, and a record of the stretch."""
    async with ExchangeSim(SimConfig(traders=1)) as sim:
        (user,) = sim.addresses
        gap_start = ms_to_datetime(sim.clock.now_ms() - 1)
        for _ in range(1100):
            sim.cancel(sim.place(user, "BTC", "B", "0.1", "50000"))
        listed = sim.exchange.historical_orders(user)
        assert len(listed) == exchange.HISTORICAL_ORDERS_LIMIT
        oldest = ms_to_datetime(min(r["statusTimestamp"] for r in listed))
        with caplog.at_level(logging.WARNING, logger="collector_service.pipeline"):
            pipe, journal = await _sim_recovery(sim, user, gap_start)
        assert pipe.stats.recoveries_truncated == {user: 1}
        metrics = generate_latest(registry_for(pipe.stats, dict)).decode()
        assert f'orderwatch_recoveries_truncated_total{{trader="{user}"}} 1.0' in metrics
        (uncovered,) = journal.of("uncovered")
        assert (uncovered["since"], uncovered["until"], uncovered["rows"]) == (gap_start, oldest, 2000)
        assert f"event=recovery_truncated user={user} uncovered_from={gap_start.isoformat()} " \
               f"uncovered_to={oldest.isoformat()}" in caplog.text
        assert len(journal.of("order")) == 2 * 1000  # what the answer shows is still recorded

        pipe, journal = await _sim_recovery(sim, user, oldest)  # a gap the answer covers
        assert pipe.stats.recoveries_truncated == {} and journal.of("uncovered") == []


async def test_recovery_keeps_to_the_followed_dexes() -> None:
    """Issue 20 item 11: with TRADER_DEXES narrowed to the main dex, orders and fills of another
    dex that the history lists are not recorded."""
    async with ExchangeSim(SimConfig(traders=1)) as sim:
        (user,) = sim.addresses
        gap_start = ms_to_datetime(sim.clock.now_ms() - 1)
        main = sim.place(user, "BTC", "B", "0.1", "50000")
        sim.fill(main)
        other = sim.place(user, "xyz:TSLA", "B", "1", "300")
        sim.fill(other)
        _, journal = await _sim_recovery(sim, user, gap_start, dexes=[""], fills=True)
        assert sorted(journal.events()) == [(main, "closed"), (main, "new")]
        assert [doc["oid"] for doc in journal.of("fill")] == [main]


async def test_a_sweep_keeps_to_the_followed_dexes() -> None:
    """Issue 20 item 11, polled tier: an order resting on a dex not followed is neither recorded
    by the sweep nor a reason to poll the trader again at once (every sweep)."""
    async with ExchangeSim(SimConfig(traders=1)) as sim:
        (user,) = sim.addresses
        swept_from = ms_to_datetime(sim.clock.now_ms() - 1)
        sim.place(user, "xyz:TSLA", "B", "1", "300")
        client = InfoClient(sim.info_url, None, exchange.REST_WEIGHT_PER_MINUTE, Stats())
        pipe, journal = pipeline(client, user)
        poller = Poller(client, pipe, pipe.stats, min_interval=5, sweep_interval=600, dexes=lambda: [""])
        polled = Polled(user, swept_from, last_poll=123.0)
        try:
            await poller.sweep(polled)
        finally:
            await client.close()
        assert polled.last_poll == 123.0 and journal.of("order") == []
