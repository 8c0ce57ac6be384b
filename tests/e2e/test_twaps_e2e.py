"""TWAPs end to end: simulator on loopback -> collector -> nx-27017 -> the `twaps` table and its
alerts, against the simulator's TWAP ground truth.

Two traders stream (twapStates; the simulator's cap is 2 users per IP here) and a third is
polled (twapHistory with each sweep). TWAPs finish, are terminated, and one starts and ends
inside a reconnect gap. Simulated time runs 60x faster, so a 5-minute TWAP takes 5 s.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from exchange_sim import ExchangeSim, SimConfig
from exchange_sim.twaps import load_twaps, twaps_path_for
from orderwatch_dagster import mongo, outbox
from orderwatch_dagster.rules import load_rules
from orderwatch_dagster.transforms.twaps import twap_alerts, twaps_table
from tests.alert_receivers import FakeReceivers
from tests.collector.harness import RunningCollector, collector_settings, eventually

DAY = "2026-03-02"
START_MS = int(datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp() * 1000)
THRESHOLD_USD = 250_000.0  # alert_rules.toml's twap_threshold_usd


@pytest.mark.parametrize("feed", ["openOrders", "webData2"])
async def test_twap_table_equals_the_simulators_twaps_and_large_ones_alert_once(
    feed: str, tmp_path: Path, mongo_uri: str, mongo_db
) -> None:
    truth = tmp_path / "truth.jsonl"
    db = mongo_db
    config = SimConfig(traders=3, push_interval=0.2, truth_file=truth, max_users_per_ip=2, speed=60.0,
                       start_time_ms=START_MS)
    async with ExchangeSim(config) as sim:
        alice, bob, carol = sim.addresses
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", [alice, bob, carol],
                                      trader_ws_feed=feed, trader_ws_max_users_per_ip=2,
                                      trader_poll_sweep_interval=5, trader_poll_min_interval=0.5)

        def ended(twap_id: int) -> bool:
            return sim.twap(twap_id).status != "activated"

        def stored_ends() -> int:
            return db.trader_twaps.count_documents({"status": {"$in": ["finished", "terminated"]}})

        async with RunningCollector(settings) as run:
            assert run.service.plan.polled[None] == (carol,)
            await eventually(lambda: sim.subscribers(alice) and sim.subscribers(bob), what="live traders subscribed")
            big = sim.start_twap(alice, "BTC", "B", "4", 5)  # ~431k USD: alerts
            small = sim.start_twap(alice, "ETH", "A", "3", 5)  # ~7k USD: no alert
            stopped = sim.start_twap(bob, "BTC", "A", "3", 10)  # ~324k USD, terminated part-way: alerts
            polled = sim.start_twap(carol, "SOL", "B", "100", 5)  # a polled trader's TWAP
            await eventually(lambda: db.trader_twaps.count_documents({"ethAddress": alice, "status": "activated"}) == 2,
                             what="starts seen on the feed")
            await eventually(lambda: sim.twap(stopped).slices_done >= 3, what="some slices of the TWAP to stop")
            sim.terminate_twap(stopped)
            await eventually(lambda: ended(big) and ended(small) and ended(polled), timeout=30, what="TWAPs ending")

            sim.refuse_connections(8.0)
            sim.drop_connections()
            in_gap = sim.start_twap(bob, "ETH", "B", "120", 5)  # ~297k USD, starts and ends unseen
            await eventually(lambda: ended(in_gap), timeout=30, what="the TWAP inside the gap to end")
            await eventually(lambda: stored_ends() == 5, timeout=45, what="every TWAP's end stored")
        assert sim.exchange.historical_orders(alice) == []  # slices wrote no order status

    truth_twaps = load_twaps(twaps_path_for(truth))
    assert len(truth_twaps) == 5
    table = twaps_table(mongo.read_twaps(db, DAY), mongo.read_fills(db, DAY), DAY)
    assert table.height == 5
    rows = {(r["ethAddress"], r["twapId"]): r for r in table.iter_rows(named=True)}
    assert set(rows) == set(truth_twaps)
    for key, line in truth_twaps.items():
        row, state = rows[key], line["state"]
        executed_sz, executed_ntl = Decimal(state["executedSz"]), Decimal(state["executedNtl"])
        assert (row["status"], row["side"], row["coin"], row["minutes"]) == (
            line["status"], state["side"], state["coin"], state["minutes"]), key
        assert row["sz"] == Decimal(state["sz"]) and row["executedSz"] == executed_sz, key
        assert row["executedNtl"] == executed_ntl, key
        assert row["avgPx"] == pytest.approx(float(executed_ntl / executed_sz), rel=1e-12), key
        assert row["startedAt"] == datetime.fromtimestamp(state["timestamp"] / 1000, UTC), key
        assert row["endedAt"] == datetime.fromtimestamp(line["statusTime"] // 1000, UTC), key  # whole seconds
        assert row["slices"] == sum(1 for f in sim.exchange.user_fills(key[0]) if f["twapId"] == key[1]), key
    assert rows[(alice, big)]["progress"] == 1.0 and 0 < rows[(bob, stopped)]["progress"] < 1

    # alerts: a start and an end of each TWAP at or above the threshold, stored once, sent once per channel
    assert load_rules().thresholds.twap_threshold_usd == THRESHOLD_USD
    found = twap_alerts(table, DAY, THRESHOLD_USD)
    large = {key for key, row in rows.items() if row["notionalUsd"] >= THRESHOLD_USD}
    assert large == {(alice, big), (bob, stopped), (bob, in_gap)}
    assert sorted(found["alertKey"].to_list()) == sorted(
        f"{user}:twap:{twap_id}:{status}" for user, twap_id in large
        for status in ("activated", rows[(user, twap_id)]["status"]))
    assert mongo.write_alerts(db, found) == 6
    assert mongo.write_alerts(db, twap_alerts(table, DAY, THRESHOLD_USD)) == 0  # a re-run adds nothing
    receivers = FakeReceivers()
    try:
        rules, now = load_rules(), datetime.now(UTC)
        channels = receivers.resource().channels()
        assert outbox.decide_pending(db, rules, now) == {"send": 6}
        outbox.deliver_due(db, channels, rules, logging.getLogger("test"), now)
        outbox.deliver_due(db, channels, rules, logging.getLogger("test"), now)  # nothing twice
        webhook = [r.body for r in receivers.requests if r.channel == "webhook"]
        assert len(webhook) == 6 and len(receivers.requests) == 6 * len(channels)
        assert any(f"terminated TWAP {stopped} sell 3.0 BTC over 10 min" in str(body) for body in webhook)
        slack = [str(r.body) for r in receivers.requests if r.channel == "slack"]
        assert any(f"TWAP {stopped} terminated" in body for body in slack)
    finally:
        receivers.close()
