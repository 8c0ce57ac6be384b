"""Two collector instances split one trader list (TRADER_SHARD_INDEX / TRADER_SHARD_COUNT) and
write to one database: every trader is tracked by exactly one of them, and the simulator's
ground truth finds every order captured once.

Twelve traders are more than one IP may track (10), so, as on separate machines, each instance
connects from its own loopback address."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pymongo.database import Database

from collector_service.plan import owned
from exchange_sim import ExchangeSim, SimConfig
from tests.collector.harness import RunningCollector, collector_settings, eventually, settled


async def test_two_shards_split_traders_without_overlap_or_duplicates(tmp_path: Path, mongo_uri: str,
                                                                       mongo_db: Database) -> None:
    truth = tmp_path / "truth.jsonl"
    config = SimConfig(traders=12, push_interval=0.5, orders_per_trader_per_min=120, truth_file=truth)
    async with ExchangeSim(config) as sim:
        shards = [
            collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / f"collector{i}", sim.addresses,
                               trader_shard_index=i, trader_shard_count=2,
                               trader_ws_source_addresses=f"127.0.0.{i + 1}")
            for i in range(2)
        ]
        async with RunningCollector(shards[0]) as first, RunningCollector(shards[1]) as second:
            runs = (first, second)
            mine = [set(run.service.users) for run in runs]
            assert mine[0].isdisjoint(mine[1]) and mine[0] | mine[1] == set(sim.addresses)
            assert all(mine[i] == set(owned(sim.addresses, i, 2)) for i in range(2))
            assert all(mine), "each shard owns some of the twelve traders"
            await eventually(lambda: all(sim.subscribers(u) == 1 for u in sim.addresses),
                             what="every trader subscribed by exactly one instance")
            assert [sim.ip_stats(f"127.0.0.{i + 1}")["users"] for i in range(2)] == [len(m) for m in mine]

            await asyncio.sleep(4)
            sim.set_order_rate(0)
            report = await settled(mongo_db, sim, truth, *runs)
            assert all(sim.subscribers(u) == 1 for u in sim.addresses)
            written = [sum(run.service.stats.events_written.values()) for run in runs]
            assert [run.service.stats.events_duplicate for run in runs] == [0, 0]
            for i, traders in enumerate(mine):
                stored = mongo_db.trader_orders.count_documents({"ethAddress": {"$in": sorted(traders)}})
                assert stored == written[i], f"shard {i} wrote exactly its own traders' events"

    assert report.observable > 40, report.summary()
    assert report.ok and report.capture_rate == 1.0, report.summary()
