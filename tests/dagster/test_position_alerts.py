"""The near_liquidation alert end to end: a trader of the simulator pushed towards liquidation, a
real collector writing its position and the marks into MongoDB, fast_alert_sensor ticks raising
the alert and delivering it on the four channels (the local receivers of test_alert_delivery)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from pymongo.database import Database

from collector_service import schema
from exchange_sim import ExchangeSim, SimConfig
from orderwatch_dagster import liquidation, rules
from tests.alert_receivers import FakeReceivers
from tests.collector.harness import RunningCollector, collector_settings, eventually
from tests.dagster.conftest import create_indexes
from tests.dagster.test_alert_delivery import Clock, Sensor, clock, receivers, set_rules  # noqa: F401 (fixtures)

RULES = """
[near_liquidation]
threshold_pct = 5.0
cooldown_s = 600

[coins.ETH]
near_liquidation_pct = 1.0
"""


def test_overrides_per_trader_and_coin_for_the_rule() -> None:
    parsed = rules.AlertRules.model_validate({
        "near_liquidation": {"threshold_pct": 5.0, "cooldown_s": 600},
        "traders": {"0x" + "1" * 40: {"near_liquidation_cooldown_s": 60, "near_liquidation_pct": 2.0}},
        "coins": {"BTC": {"near_liquidation_pct": 3.0}},
    })
    assert parsed.near_liquidation_policy("0x" + "1" * 40, "BTC") == (2.0, 60)  # the trader's wins
    assert parsed.near_liquidation_policy("0x" + "2" * 40, "BTC") == (3.0, 600)
    assert parsed.near_liquidation_policy("0x" + "2" * 40, "SOL") == (5.0, 600)
    with pytest.raises(Exception, match="less than or equal to 100"):
        rules.AlertRules.model_validate({"near_liquidation": {"threshold_pct": 150}})


async def test_a_trader_pushed_towards_liquidation_raises_one_alert_per_cooldown_on_every_channel(
        tmp_path: Path, mongo_uri: str, mongo_db: Database, resources: dict,
        receivers: FakeReceivers, clock: Clock, set_rules: Callable[[str], None]) -> None:  # noqa: F811 (fixtures)
    create_indexes(mongo_db)
    set_rules(RULES)
    with dg.instance_for_test() as instance:
        sensor = Sensor(instance, resources, receivers.resource())
        async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
            whale, calm = sim.addresses
            settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", [whale, calm])
            sim.set_mark("BTC", "100000")
            sim.set_mark("ETH", "2000")
            sim.place(whale, "BTC", "B", "0.5", "100000", tif="Ioc", fill_immediately=True)
            sim.place(calm, "ETH", "B", "1", "2000", tif="Ioc", fill_immediately=True)  # 1x-ish: far away
            liq = Decimal(next(p["position"]["liquidationPx"]
                               for p in sim.exchange.clearinghouse_state(whale)["assetPositions"]))

            async with RunningCollector(settings):
                async def mark_stored(coin: str, px: str) -> None:
                    await eventually(lambda: mongo_db[schema.MARKS].find_one({"_id": coin, "markPx": px}),
                                     timeout=30, what=f"{coin} mark {px}")

                await eventually(lambda: mongo_db[schema.POSITIONS].count_documents({}) == 2, what="positions")
                steps = []
                for gap in ("0.20", "0.08", "0.04", "0.02"):  # the mark 20 %, 8 %, 4 %, 2 % above the edge
                    px = (liq * (1 + Decimal(gap))).quantize(Decimal(1))
                    assert sim.set_mark("BTC", str(px)) == []
                    await mark_stored("BTC", f"{px}.0")
                    clock.now += timedelta(seconds=60)
                    sensor.tick()
                    steps.append(mongo_db[schema.ALERTS].count_documents({"kind": liquidation.KIND}))
                assert steps == [0, 0, 1, 1]  # within 5 % from the third step; the fourth is in the cooldown
                clock.now += timedelta(seconds=600)  # the cooldown over, still within 5 %: one more
                sensor.tick()
                assert mongo_db[schema.ALERTS].count_documents({"kind": liquidation.KIND}) == 2

                # past the edge: the exchange liquidates, the collector stores the liquidation fill
                (oid,) = sim.set_mark("BTC", str(liq - 100))
                liquidated = await eventually(lambda: mongo_db[schema.FILLS].find_one({"oid": oid}),
                                              what="the liquidation fill")
                assert Decimal(liquidated["px"]) == liq - 100  # closed at the mark
                assert liquidated["liquidation"] == {"liquidatedUser": whale, "markPx": liquidated["px"],
                                                     "method": "market"}
                await eventually(lambda: mongo_db[schema.POSITIONS].find_one(
                    {"ethAddress": whale, "coin": "BTC", "szi": "0.0"}), what="the position closed")
                clock.now += timedelta(seconds=60)
                sensor.tick()

        alerts = list(mongo_db[schema.ALERTS].find({"kind": liquidation.KIND}).sort("eventAt", 1))
        assert {(a["ethAddress"], a["coin"], a["side"]) for a in alerts} == {(whale, "BTC", "long")}
        assert all(a["decision"] == "send" and set(a["deliveries"]) == {"webhook", "slack", "discord", "telegram"}
                   for a in alerts)
        first = alerts[0]
        assert (first["liquidationPx"], first["szi"], first["leverage"]) == (str(liq), "0.5", 5)
        assert 3.0 < first["distancePct"] < 5.0
        for channel in ("webhook", "slack", "discord", "telegram"):
            got = [m for m in receivers.got(channel) if "near liquidation" in str(m)]
            assert len(got) == 2, channel  # one message per alert on every channel, nothing for the calm trader
            assert "near liquidation: mark" in str(got[0]) and str(liq) in str(got[0])
        closes = list(mongo_db[schema.ALERTS].find({"kind": "position", "change": "close"}))
        assert [(c["ethAddress"], c["sziBefore"]) for c in closes] == [(whale, "0.5")]
        assert Decimal(closes[0]["realizedPnl"]) == Decimal("0.5") * (liq - 100 - 100000)


def truth_change(fill: dict) -> tuple[str, Decimal, Decimal]:
    """What the simulator did, from its own fill: (open/add/reduce/close/flip, size before, after)."""
    start = Decimal(fill["startPosition"])
    end = start + (Decimal(fill["sz"]) if fill["side"] == "B" else -Decimal(fill["sz"]))
    direction = fill["dir"]
    if ">" in direction:
        return "flip", start, end
    if direction.startswith("Open"):
        return ("open" if start == 0 else "add"), start, end
    return ("close" if end == 0 else "reduce"), start, end


async def test_position_alerts_read_open_add_reduce_flip_close_as_the_simulator_did(
        tmp_path: Path, mongo_uri: str, mongo_db: Database, resources: dict,
        receivers: FakeReceivers, clock: Clock, set_rules: Callable[[str], None]) -> None:  # noqa: F811 (fixtures)
    create_indexes(mongo_db)
    with dg.instance_for_test() as instance:
        sensor = Sensor(instance, resources, receivers.resource())
        async with ExchangeSim(SimConfig(traders=1, push_interval=0.2)) as sim:
            (trader,) = sim.addresses
            sim.set_mark("BTC", "100000")
            settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", [trader])
            entries = []
            async with RunningCollector(settings):
                await eventually(lambda: mongo_db[schema.ACCOUNTS].find_one({"ethAddress": trader}), what="followed")
                for side, sz, px in (("B", "0.5", "100000"), ("B", "0.3", "101000"), ("A", "0.2", "102000"),
                                     ("A", "1.0", "99000"), ("B", "0.4", "98000")):
                    sim.place(trader, "BTC", side, sz, px, tif="Ioc", fill_immediately=True)
                    state = sim.exchange.clearinghouse_state(trader)["assetPositions"]
                    szi = state[0]["position"]["szi"] if state else "0.0"
                    entries.append(state[0]["position"]["entryPx"] if state else None)
                    await eventually(lambda szi=szi: mongo_db[schema.POSITIONS].find_one(
                        {"ethAddress": trader, "coin": "BTC", "szi": szi}, sort=[("serverTime", -1)]),
                        what=f"position {szi}")
                await eventually(lambda: mongo_db[schema.FILLS].count_documents({"ethAddress": trader}) == 5,
                                 what="the five fills")
            fills = list(reversed(sim.exchange.user_fills(trader)))  # oldest first
        clock.now += timedelta(seconds=60)
        sensor.tick()

    alerts = list(mongo_db[schema.ALERTS].find({"kind": "position"}).sort("eventAt", 1))
    got = [(a["change"], Decimal(a["sziBefore"]), Decimal(a["szi"]), Decimal(a["realizedPnl"])) for a in alerts]
    truth = [(*truth_change(f), Decimal(f["closedPnl"])) for f in fills]
    assert [t[0] for t in truth] == ["open", "add", "reduce", "flip", "close"]
    assert got == truth
    # entry and leverage: the position's after the change, the closed position's for a close
    assert [a["entryPx"] for a in alerts] == [*entries[:4], entries[3]]
    assert all(a["leverage"] == 5 and a["decision"] == "send" for a in alerts)
    assert [a["side"] for a in alerts] == ["long", "long", "long", "short", "short"]
    webhook = receivers.got("webhook")
    words = [line for message in webhook for line in message["text"].splitlines()[1:]]
    assert len(words) == 5 and "flip short: size 0.6 → -0.4" in words[3]
    assert f"realized PnL {truth[2][3].normalize():f}" in words[2]
