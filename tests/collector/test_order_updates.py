"""Outcomes from the ``orderUpdates`` feed: matched by oid to the trader whose order it is (its
frames name no user), before or after the snapshot that closes the order, with no info call."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector_service.events.wire import OpenOrdersMsg, OrderUpdatesMsg, decode_frame
from collector_service.metrics import Stats
from collector_service.outcomes import OutcomeResolver
from collector_service.pipeline import Pipeline
from collector_service.rest import InfoClient
from collector_service.sources.websocket import subscriptions_for
from exchange_sim import ExchangeSim, SimConfig, compare
from tests.collector.frames import USER, encode, frontend_orders, open_orders_frame
from tests.collector.harness import RunningCollector, collector_settings, eventually
from tests.collector.test_recovery import Journaled

OTHER = "0x" + "ef" * 20
CLOID = "0x" + "ab" * 16
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def order(oid: int, cloid: str | None = None) -> dict[str, Any]:
    """The real captured frontend order under another oid, without children."""
    found = copy.deepcopy(frontend_orders()[0])
    found.update(children=[], oid=oid, cloid=cloid)
    return found


def update(oid: int, status: str, at_ms: int, coin: str = "BTC") -> dict[str, Any]:
    """One element of an orderUpdates frame, shaped as PROTOCOL.md §1.6's example (WsBasicOrder)."""
    return {"order": {"coin": coin, "side": "A", "limitPx": "2412.7", "sz": "0.0", "oid": oid,
                      "timestamp": 1724361546645, "origSz": "0.0076", "cloid": None},
            "status": status, "statusTimestamp": at_ms}


def snapshot(pipe: Pipeline, user: str, orders: list[dict[str, Any]]) -> None:
    msg = decode_frame(encode(open_orders_frame(orders, user=user)))
    assert isinstance(msg, OpenOrdersMsg)
    pipe.on_orders(user, "", msg.data.orders, None, NOW)


def tell(pipe: Pipeline, users: list[str], *updates: dict[str, Any]) -> None:
    msg = decode_frame(encode({"channel": "orderUpdates", "data": list(updates)}))
    assert isinstance(msg, OrderUpdatesMsg)
    pipe.on_order_updates(users, msg.data)


def ms(at: Any) -> int:
    return int(at.timestamp() * 1000)


def test_updates_are_matched_by_oid_and_settle_closes_before_or_after_the_snapshot() -> None:
    stats = Stats()
    journal = Journaled()
    client = InfoClient("http://127.0.0.1:9/info", None, 1200, stats)  # never called here
    resolver = OutcomeResolver(client, journal.submit)  # one egress: one resolver for both traders
    pipe = Pipeline(journal, stats, {USER: client, OTHER: client},  # type: ignore[arg-type]
                    {USER: resolver, OTHER: resolver}, dexes=lambda: [""], record_fills=False, record_twaps=False)
    snapshot(pipe, USER, [order(1001), order(1002), order(1003, CLOID)])
    snapshot(pipe, OTHER, [order(2001)])

    # the feed tells first: USER's 1001 filled and 1003 canceled, OTHER's 2001 canceled, 1002
    # partly filled (still open), and an order none of them was seen holding (it lived between
    # two snapshots)
    tell(pipe, [USER, OTHER], update(1001, "filled", 1_765_000_000_001), update(1002, "open", 1_765_000_000_002),
         update(2001, "canceled", 1_765_000_000_003), update(3003, "filled", 1_765_000_000_004),
         update(1003, "canceled", 1_765_000_000_006))
    assert journal.of("final") == [] and len(resolver) == 0  # nothing closed yet: kept for the closes

    # the snapshots that show them gone: each close is stored with its outcome, no write of its own
    snapshot(pipe, USER, [order(1002), order(1004, CLOID)])  # 1003 modified: replaced by 1004
    snapshot(pipe, OTHER, [])
    closed = {d["oid"]: d for d in journal.of("order") if d["action"] == "closed"}
    assert {oid: (d["ethAddress"], d["finalStatus"], ms(d["statusTimestamp"])) for oid, d in closed.items()
            if oid != 1003} == {1001: (USER, "filled", 1_765_000_000_001), 2001: (OTHER, "canceled", 1_765_000_000_003)}
    # the replaced order's outcome is written apart, where the store checks the link against it
    assert closed[1003]["replacedByOid"] == 1004 and closed[1003]["finalStatus"] == "unknown"
    assert [(d["oid"], d["finalStatus"], ms(d["statusTimestamp"])) for d in journal.of("final")] == [
        (1003, "canceled", 1_765_000_000_006)]

    # the snapshot first: the close waits for its outcome, which the feed then tells
    snapshot(pipe, USER, [order(1004, CLOID)])
    assert len(resolver) == 1
    tell(pipe, [OTHER, USER], update(1002, "marginCanceled", 1_765_000_000_005))
    assert [(d["ethAddress"], d["oid"], d["finalStatus"]) for d in journal.of("final")][1:] == [
        (USER, 1002, "marginCanceled")]
    assert len(resolver) == 0 and 3003 not in closed
    assert stats.outcomes_from_feed == 4 and not stats.rest_calls


def test_one_order_updates_subscription_per_user_with_the_main_dex() -> None:
    subs = subscriptions_for(USER, "openOrders", ["", "xyz"], order_updates=True)
    assert [s for s in subs if s["type"] == "orderUpdates"] == [{"type": "orderUpdates", "user": USER}]
    assert not [s for s in subscriptions_for(USER, "openOrders", ["xyz"], order_updates=True)
                if s["type"] == "orderUpdates"]  # a dex added later: the user's feed is already there


async def test_live_closes_get_their_outcomes_from_the_feed_without_info_calls(
        tmp_path: Path, mongo_uri: str, mongo_db: Any) -> None:
    truth = tmp_path / "truth.jsonl"
    db = mongo_db
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2, truth_file=truth)) as sim:
        alice, bob = sim.addresses
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", [alice, bob])
        orders = {(alice, sim.place(alice, "BTC", "B", "0.5", "60000")): "filled",
                  (alice, sim.place(alice, "ETH", "A", "1", "4000")): "canceled",
                  (bob, sim.place(bob, "SOL", "B", "3", "100")): "marginCanceled",
                  (bob, sim.place(bob, "BTC", "A", "0.1", "90000")): "reduceOnlyCanceled"}
        async with RunningCollector(settings) as run:
            await eventually(lambda: db.trader_orders.count_documents({"eventKey": "new"}) == 4, what="4 new")
            await eventually(lambda: not run.service.pipeline.gaps, what="the start-up recoveries")
            stats = run.service.stats
            calls_before = dict(stats.rest_calls)
            for (_, oid), status in orders.items():
                sim.fill(oid) if status == "filled" else sim.cancel(oid, status)

            def settled() -> bool:
                docs = list(db.trader_orders.find({"eventKey": "closed"}))
                return len(docs) == 4 and all(d.get("finalStatus") not in (None, "unknown") for d in docs)

            await eventually(settled, timeout=30, what="4 closes with their outcomes")
            assert {(d["ethAddress"], d["oid"]): d["finalStatus"]
                    for d in db.trader_orders.find({"eventKey": "closed"})} == orders
            assert stats.outcomes_from_feed == 4
            assert stats.rest_calls.get("orderStatus", 0) == calls_before.get("orderStatus", 0) == 0
            assert stats.rest_calls.get("historicalOrders") == calls_before.get("historicalOrders")
    report = compare(db.trader_orders, truth, users=[alice, bob])
    assert report.wrong_final_status == [] and report.duplicates == [] and report.unknown == []


async def test_an_order_updates_subscription_the_exchange_refuses_costs_only_itself(
        tmp_path: Path, mongo_uri: str, mongo_db: Any) -> None:
    """Several users' orderUpdates on one socket are not documented either way: should the exchange
    refuse them, the traders stay live and their outcomes come over REST."""
    db = mongo_db
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
        alice, bob = sim.addresses
        subscribe = sim._subscribe

        async def refusing(conn: Any, ipst: Any, key: bytes, sub: dict[str, Any]) -> None:
            if sub["type"] == "orderUpdates":  # an error frame and no ack
                await sim._error(conn, "Cannot subscribe to orderUpdates multiple times")
                return
            await subscribe(conn, ipst, key, sub)

        sim._subscribe = refusing  # type: ignore[method-assign]
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", [alice, bob], trader_ws_clients=1)
        oids = [sim.place(alice, "BTC", "B", "0.5", "60000"), sim.place(bob, "ETH", "A", "1", "4000")]
        async with RunningCollector(settings) as run:
            stats = run.service.stats
            await eventually(lambda: stats.exchange_errors["subscription_rejected"] == 2, timeout=30,
                             what="both orderUpdates given up after the ack timeout")
            assert run.service.refused_users() == [] and set(run.service.live_users) == {alice, bob}
            for oid in oids:
                sim.cancel(oid, "marginCanceled")
            await eventually(lambda: db.trader_orders.count_documents({"finalStatus": "marginCanceled"}) == 2,
                             timeout=30, what="outcomes over REST")
            assert stats.outcomes_from_feed == 0 and stats.rest_calls["orderStatus"] == 2
            assert run.service.refused_users() == []
