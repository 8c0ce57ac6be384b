"""Fills end to end: simulator on loopback -> collector -> nx-27017, against the fill ground truth.

Two traders stream (the simulator's cap is 2 users per IP here) and a third is polled. Fills
happen before the collector starts, while it runs (maker partial and full fills, a taker IOC that
never rests, a trigger), inside a reconnect gap and while it is down; every one must be in
``trader_fills`` exactly once with the exchange's fields, whether it came from the userFills feed
(whose snapshot is re-sent on every reconnect) or from userFillsByTime.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange_sim import ExchangeSim, SimConfig, compare_fills
from tests.collector.harness import RunningCollector, collector_settings, eventually


def fills_of(db, user: str) -> int:
    return db.trader_fills.count_documents({"ethAddress": user})


@pytest.mark.parametrize("feed", ["openOrders", "webData2"])
async def test_every_fill_once_across_gaps_restarts_and_tiers(feed: str, tmp_path: Path, mongo_uri: str,
                                                              mongo_db) -> None:
    truth = tmp_path / "truth.jsonl"
    db = mongo_db
    async with ExchangeSim(SimConfig(traders=3, push_interval=0.2, truth_file=truth, max_users_per_ip=2)) as sim:
        alice, bob, carol = sim.addresses
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", [alice, bob, carol],
                                      trader_ws_feed=feed, trader_ws_max_users_per_ip=2,
                                      trader_poll_sweep_interval=5, trader_poll_min_interval=0.5)
        early = sim.place(alice, "BTC", "B", "0.5", "60000")
        sim.fill(early, "0.2")  # before the collector starts: recovered over REST
        async with RunningCollector(settings) as run:
            assert run.service.plan.polled[None] == (carol,)
            await eventually(lambda: fills_of(db, alice) == 1, what="the fill from before the start")
            sim.fill(early)  # the rest, as a maker
            sim.place(bob, "ETH", "A", "1", "2500", tif="Ioc", fill_immediately=True)  # taker, never rests
            bracket = sim.place(bob, "SOL", "B", "10", "200", tp_px="300", sl_px="100")
            sim.fill(bracket)
            sim.trigger(sim.children_of(bracket)[0])
            polled = sim.place(carol, "xyz:TSLA", "B", "2", "240")
            sim.fill(polled, "1")
            await eventually(lambda: fills_of(db, alice) == 2 and fills_of(db, bob) == 3, what="live fills")
            await eventually(lambda: fills_of(db, carol) == 1, timeout=30, what="a polled trader's fill")

            sim.refuse_connections(2.0)
            sim.drop_connections()
            gap = sim.place(alice, "ETH", "B", "1", "2400")
            sim.fill(gap)
            await eventually(lambda: fills_of(db, alice) == 3, timeout=30, what="a fill inside the gap")

        while_down = sim.place(bob, "BTC", "A", "0.1", "70000")
        sim.fill(while_down)
        sim.fill(polled)
        async with RunningCollector(settings):
            await eventually(lambda: fills_of(db, bob) == 4 and fills_of(db, carol) == 2, timeout=30,
                             what="fills while the collector was down")

        maker = db.trader_fills.find_one({"oid": early, "sz": "0.3"})
        taker = db.trader_fills.find_one({"ethAddress": bob, "coin": "ETH"})
        assert (maker["crossed"], taker["crossed"]) == (False, True)
        assert db.trader_fills.find_one({"ethAddress": carol})["dex"] == "xyz"
    report = compare_fills(db.trader_fills, truth, users=[alice, bob, carol])
    assert report.ok and report.capture_rate == 1.0 and report.total == 9, report.summary()
