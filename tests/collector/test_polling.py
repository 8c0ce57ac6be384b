"""The polling tier end to end: 40 traders on one egress address whose WebSocket cap is 10.

Ten traders stream; thirty are polled over the info API within the address's REST budget, and
swept (``historicalOrders``) for the orders that opened and closed between two polls. The
simulator's ground truth counts every order of a trader nobody streamed as observable, so a
capture rate of 1.0 means the sweeps found everything the polls could not see.

Time is compressed for the suite: the REST budget is 4x the exchange's on both sides (the
simulator enforces it and answers 429 past it), so a polling round and a sweep round take
seconds instead of a minute.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from exchange_sim import ExchangeSim, SimConfig, compare
from tests.collector.harness import RunningCollector, collector_settings, eventually
from tests.mongo_server import free_port

BUDGET = 4 * 1200


@pytest.mark.slow
async def test_forty_traders_on_one_address_all_followed(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    truth = tmp_path / "truth.jsonl"
    config = SimConfig(traders=40, push_interval=0.5, orders_per_trader_per_min=20, truth_file=truth,
                       rest_weight_per_min=BUDGET)
    health_port = free_port()
    async with ExchangeSim(config) as sim:
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", sim.addresses,
                                      collector_rest_weight_per_minute=BUDGET, trader_poll_sweep_interval=10,
                                      collector_health_port=health_port)
        async with RunningCollector(settings) as run:
            service = run.service
            assert service.plan.over_capacity == () and len(service.plan.polled[None]) == 30
            await eventually(lambda: len(service.pollers[None].traders) == 30, what="30 traders polled")
            assert len(service.live_users) == 10
            await eventually(lambda: sim.ip_stats("127.0.0.1")["users"] == 10, what="10 users live")
            await asyncio.sleep(15)
            sim.set_order_rate(0)
            stopped = asyncio.get_running_loop().time()
            poller = service.pollers[None]
            # every polled trader swept after trading stopped, and every outcome known
            # (sweeps stay in their share of the budget: 30 traders take longer than the interval)
            await eventually(lambda: all(t.last_sweep > stopped + 0.5 for t in poller.traders.values()),
                             timeout=2 * poller.expected_sweep_period_s() + 30,
                             what="a sweep of every polled trader after trading stopped")
            swept = asyncio.get_running_loop().time()
            await eventually(lambda: all(t.last_done > swept for t in poller.traders.values()),
                             timeout=60, what="a poll of every polled trader after those sweeps")
            unresolved = {"action": "closed", "finalStatus": "unknown"}
            await eventually(lambda: mongo_db.trader_orders.count_documents(unresolved) == 0
                             and service.writer.pending_ops == 0, timeout=30, what="outcomes resolved")
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{health_port}/healthz") as r:
                health = json.loads(await r.text())
            polled = health["tiers"]["polled"]["default"]
            assert health["traders_over_capacity"] == 0 and health["tiers"]["live"]["traders"] == 10
            assert polled["traders"] == 30 and polled["period_median_s"] is not None
            # the achieved refresh period is about what the budget allows (30 traders x ~20.5 weight); a
            # loaded machine stretches it (1.31x in a run beside two busy loops), so this is a bound on
            # gross mistakes: the polling benchmark measures the ratio (1.04x at 40, 100 and 500 traders)
            assert polled["period_median_s"] <= 1.5 * polled["expected_period_s"], polled
            # traders polled throughout have only polled and recovered orders (a trader swapped
            # between the tiers, possible once it stayed MIN_STAY_S, was seen live too)
            (tiers,) = service.tiers
            throughout = [u for u in poller.traders if u not in tiers.since]
            assert len(throughout) >= 20, tiers.since
            # (find, not distinct: nx-27017's distinct ignores its filter)
            sources = {d["source"] for d in mongo_db.trader_orders.find(
                {"ethAddress": {"$in": throughout}}, {"source": 1})}
            assert sources == {"poll", "rest"}, sources
        assert sim.stats.rest_429 == 0, sim.stats.rest_429
    report = compare(mongo_db.trader_orders, truth, users=sim.addresses)
    assert report.observable > 100, report.summary()
    assert report.ok and report.capture_rate == 1.0, (report.summary(), report.missed_gap_only)
    assert report.gap_only > 50, report.summary()  # orders of polled traders, seen by polls or sweeps
