"""The collector end to end: the exchange simulator on loopback -> collector -> nx-27017.

One scripted scenario per feed mode covers partial fills, a modify (cancel-and-replace), TP/SL children, closes
with their true outcome, a dropped connection with orders that lived only inside the gap, and
a restart; the simulator's ground truth then confirms nothing was missed or duplicated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange_sim import ExchangeSim, SimConfig, compare
from tests.collector.harness import RunningCollector, collector_settings, events_of, eventually


def has(db, user: str, oid: int, key: str, final: str | None = None):
    def check() -> bool:
        doc = db.trader_orders.find_one({"ethAddress": user, "oid": oid, "eventKey": key})
        return doc is not None and (final is None or doc.get("finalStatus") == final)

    return check


@pytest.mark.parametrize("feed", ["openOrders", "webData2"])
async def test_scenario_against_ground_truth(feed: str, tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    truth = tmp_path / "truth.jsonl"
    async with ExchangeSim(SimConfig(traders=3, push_interval=0.2, truth_file=truth)) as sim:
        alice, bob = sim.addresses[0], sim.addresses[1]
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "collector", [alice, bob],
                                      trader_ws_feed=feed)
        db = mongo_db

        limit = sim.place(alice, "BTC", "B", "0.5", "60000")
        bracket = sim.place(bob, "ETH", "B", "2", "2000", tp_px="3000", sl_px="1500")
        tp, sl = sim.children_of(bracket)
        doomed = sim.place(alice, "SOL", "A", "10", "250")
        keeper = sim.place(bob, "BTC", "A", "0.01", "90000")
        async with RunningCollector(settings) as run:
            for oid, user in ((limit, alice), (bracket, bob), (tp, bob), (sl, bob), (doomed, alice), (keeper, bob)):
                await eventually(has(db, user, oid, "new"), what=f"new {oid}")
            child = db.trader_orders.find_one({"oid": tp, "eventKey": "new"})
            assert child["parentOid"] == bracket and child["isTrigger"] is True

            sim.fill(limit, "0.2")
            await eventually(has(db, alice, limit, "updated:1"), what="partial fill")
            amended = sim.amend(limit, limit_px="61000")  # cancel-and-replace: a new oid
            await eventually(has(db, alice, amended, "new"), what="amend")
            await eventually(has(db, alice, limit, "closed", "canceled"), what="replaced order's outcome")
            sim.cancel(amended)
            await eventually(has(db, alice, amended, "closed", "canceled"), what="cancel outcome")

            # the connection drops and reconnects are refused for a while: a gap
            sim.refuse_connections(2.0)
            sim.drop_connections()
            gap_only = sim.place(alice, "BTC", "A", "0.1", "70000")
            sim.fill(gap_only)
            sim.cancel(doomed, "marginCanceled")
            await eventually(has(db, alice, gap_only, "closed", "filled"), timeout=30, what="gap-only order")
            await eventually(has(db, alice, doomed, "closed", "marginCanceled"), what="closed during gap")
            assert run.service.stats.reconnects

        # restart: while the collector is down an order is placed, the bracket's parent fills
        # and its take-profit fires (the stop-loss sibling is cancelled by the exchange)
        while_down = sim.place(bob, "BTC", "B", "0.3", "59000")
        sim.fill(bracket)
        sim.trigger(tp)
        async with RunningCollector(settings):
            await eventually(has(db, bob, while_down, "new"), what="order placed while down")
            await eventually(has(db, bob, tp, "closed", "filled"), what="triggered TP outcome")
            await eventually(has(db, bob, sl, "closed", "siblingFilledCanceled"), what="sibling cancel")
            await eventually(has(db, bob, bracket, "closed", "filled"), what="parent filled while down")
            await eventually(lambda: db.trader_open_orders.count_documents({}) == 2, what="open-order state")

        assert events_of(db, alice, limit) == [("new", "ws"), ("updated:1", "ws"), ("closed", "canceled")]
        assert events_of(db, alice, amended) == [("new", "ws"), ("closed", "canceled")]
        partial = db.trader_orders.find_one({"oid": limit, "seq": 1})
        assert (partial["partialFill"], partial["sz"], partial["origSz"]) == (True, "0.3", "0.5")
        replacement = db.trader_orders.find_one({"oid": amended, "eventKey": "new"})
        assert (replacement["replacesOid"], replacement["limitPx"], replacement["sz"]) == (limit, "61000.0", "0.3")
        assert db.trader_orders.find_one({"oid": limit, "eventKey": "closed"})["replacedByOid"] == amended
        assert events_of(db, alice, gap_only) == [("new", "rest"), ("closed", "filled")]
        assert db.trader_orders.count_documents({"oid": keeper}) == 1  # open throughout: no spurious new
        assert db.trader_orders.count_documents({"oid": while_down}) == 1

        # positions: the latest stored document per coin is the exchange's position now
        for user in (alice, bob):
            served = {a["position"]["coin"]: a["position"]["szi"]
                      for a in sim.exchange.clearinghouse_state(user)["assetPositions"]}
            stored: dict[str, str] = {}
            for doc in db.trader_positions.find({"ethAddress": user}).sort("serverTime", -1):
                stored.setdefault(doc["coin"], doc["szi"])
            assert {c: szi for c, szi in stored.items() if szi != "0.0"} == served
        assert db.trader_positions.find_one({"ethAddress": alice, "coin": "BTC", "szi": "0.1"})

    report = compare(db.trader_orders, truth, users=[alice, bob])
    assert report.duplicates == [] and report.wrong_final_status == [] and report.unknown == []
    assert report.missed_visible == [] and report.missed_gap_only == []
    assert report.capture_rate == 1.0 and report.observable >= 7
