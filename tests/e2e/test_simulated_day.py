"""A simulated day, end to end, against the simulator's fill ground truth.

Random traders (modifies, partial fills, IOCs, triggers, spot and HIP-3 coins) trade while the
collector records orders and fills; then the Dagster transforms build the day's lifecycles from
what MongoDB holds. For every amend chain, what the lifecycle says was traded (size, average
price, USDC fees, realized PnL, maker share) must equal the simulator's own fills of the chain's
orders, and every fill must be in the fills table once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from exchange_sim import ExchangeSim, SimConfig, compare, compare_fills
from exchange_sim.config import fills_path_for
from exchange_sim.fill_truth import load_fills
from orderwatch_dagster import mongo
from orderwatch_dagster.transforms.lifecycles import order_lifecycles
from tests.collector.harness import RunningCollector, collector_settings, eventually

FILLED_ORDERS = 20
"""Orders with fills before trading stops; amend chains join some, so at least half as many lifecycles."""


@pytest.mark.slow
async def test_lifecycle_fill_figures_equal_the_exchange_fills(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    truth = tmp_path / "truth.jsonl"
    db = mongo_db
    started = datetime.now(UTC)
    async with ExchangeSim(SimConfig(traders=4, push_interval=0.3, orders_per_trader_per_min=90,
                                     truth_file=truth)) as sim:
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", sim.addresses)
        async with RunningCollector(settings) as run:
            def traded() -> bool:  # enough to check (a loaded machine trades less in a given time)
                sim.recorder.flush()
                return len({fill["oid"] for fill in load_fills(fills_path_for(truth)).values()}) >= FILLED_ORDERS

            await asyncio.sleep(12)
            await eventually(traded, timeout=120, what=f"{FILLED_ORDERS} orders with fills")
            sim.set_order_rate(0)
            unresolved = {"action": "closed", "finalStatus": "unknown"}
            await eventually(lambda: db.trader_orders.count_documents(unresolved) == 0
                             and run.service.writer.pending_ops == 0, timeout=30, what="outcomes resolved")
            await eventually(lambda: compare_fills(db.trader_fills, truth, users=sim.addresses).ok, timeout=30,
                             what="every fill stored")
    assert compare(db.trader_orders, truth, users=sim.addresses).ok
    # the run may cross midnight UTC: build every day it touched, the later row of a chain wins
    days = sorted({started.date().isoformat(), datetime.now(UTC).date().isoformat()})
    events = pl.concat([mongo.read_order_events(db, day) for day in days])
    fills = pl.concat([mongo.read_fills(db, day) for day in days])
    lifecycles = pl.concat([order_lifecycles(events, day, fills) for day in days]).unique(
        ["ethAddress", "rootOid"], keep="last", maintain_order=True)

    by_oid: dict[int, list[dict]] = defaultdict(list)
    for fill in load_fills(fills_path_for(truth)).values():
        by_oid[int(fill["oid"])].append(fill)
    assert sum(len(f) for f in by_oid.values()) == fills.height
    checked = 0
    for row in lifecycles.iter_rows(named=True):
        chain = [f for oid in row["oids"] for f in by_oid.get(oid, [])]
        size = sum(Decimal(f["sz"]) for f in chain)
        assert Decimal(str(row["filledSz"])) == size, row
        if not chain:
            continue
        checked += 1
        notional = sum(Decimal(f["px"]) * Decimal(f["sz"]) for f in chain)
        assert float(row["avgFillPx"]) == pytest.approx(float(notional / size)), row
        assert float(row["realizedPnl"]) == pytest.approx(float(sum(Decimal(f["closedPnl"]) for f in chain))), row
        if all(f["feeToken"] == "USDC" for f in chain):
            assert float(row["feesUsd"]) == pytest.approx(float(sum(Decimal(f["fee"]) for f in chain))), row
        maker = sum(Decimal(f["sz"]) for f in chain if not f["crossed"])
        assert float(row["makerShare"]) == pytest.approx(float(maker / size)), row
    assert checked >= FILLED_ORDERS // 2, f"only {checked} lifecycles with fills"
