"""Benchmark: the polling tier's refresh period against the budget-bound optimum.

For 40 and 100 traders on one egress address and 500 on five (the exchange streams 10 per address
live), the simulator trades at a quiet trader's pace and the real collector (in this process) polls
the rest. Figures per size:

* achieved refresh period of a polled trader (median over traders and polls in the window);
* the worst single gap between two polls of one trader against the optimum (target 1.3x), and the
  share of gaps over 1.5x (polls are timed as their request goes out);
* the budget-bound optimum: polled traders x 20 weight / the polling budget per minute
  (``frontendOpenOrders`` costs 20; the target is within 1.1x of it);
* weight a poll actually cost (clearinghouseState, 2, is added when orders vanished or shrank,
  and every 4th poll; each HIP-3 dex a trader uses adds 20 more: the simulated traders here
  trade the main dex only, as the optimum assumes);
* time from a polled trader's new order (its exchange placement time) to its document being
  built, median and p95, and as a share of the period (about half a period is the expectation).

Time is compressed: the REST budget is ``SCALE`` x the exchange's on both sides (the simulator
enforces it with 429s), so a polling round that takes minutes at 1200 weight/min takes seconds.
Periods and latencies scale with 1/SCALE; their ratios to the optimum do not. Figures are
reported at the benchmark's scale and projected to the real budget.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

import pymongo

from benchmarks.report import Section
from collector_service import exchange
from collector_service.config import load_settings
from collector_service.service import Service
from exchange_sim import ExchangeSim, SimConfig
from tests.mongo_server import NxServer

SCALE = 10
SIZES = ((40, 1), (100, 1), (500, 5))  # (traders, egress addresses)
ORDERS_PER_TRADER_PER_MIN = 1.0  # polled traders are the quiet ones: the busiest get live slots


async def measure(traders: int, addresses: int, uri: str, data: Path, scale: int, rounds: float) -> dict[str, Any]:
    """Run one size; return its figures."""
    budget = exchange.REST_WEIGHT_PER_MINUTE * scale
    egresses = [f"127.0.0.{i + 1}" for i in range(addresses)] if addresses > 1 else [None]
    config = SimConfig(traders=traders, push_interval=1.0, orders_per_trader_per_min=ORDERS_PER_TRADER_PER_MIN,
                       rest_weight_per_min=budget, hip3_dexes=False)
    db_name = f"bench_poll_{traders}"
    async with ExchangeSim(config) as sim:
        settings = load_settings(
            mongo_uri=uri, mongo_db=db_name, hyperliquid_ws_url=sim.ws_url, hyperliquid_info_url=sim.info_url,
            trader_addresses=",".join(sim.addresses), collector_data_dir=data / db_name, collector_health_port=0,
            collector_rest_weight_per_minute=budget, trader_poll_min_interval=0.2,
            trader_orders_ws_flush_interval=0.2, trader_ws_clients=2,
            trader_ws_source_addresses=",".join(e for e in egresses if e),
        )
        service = Service(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            pollers = [service.pollers[e] for e in egresses]
            polled = max(len(service.plan.polled.get(e, ())) for e in egresses)  # the busiest address
            if not polled:
                return {"traders": traders, "polled": 0, "live": len(service.plan.live())}
            poll_budget = pollers[0].budget.limit
            optimum = polled * exchange.WEIGHT_DEFAULT / poll_budget * 60.0
            # warm-up: every polled trader polled twice (its first period is start-up)
            async with asyncio.timeout(max(60.0, 6 * optimum)):
                while any(len(p.traders) < len(service.plan.polled.get(e, ())) or any(
                        t.polls < 2 for t in p.traders.values()) for e, p in zip(egresses, pollers, strict=True)):
                    await asyncio.sleep(0.2)
            started = asyncio.get_running_loop().time()
            periods: list[float] = []
            seen: dict[str, int] = {}
            while asyncio.get_running_loop().time() - started < rounds * max(optimum, 1.0):
                for t in (t for p in pollers for t in p.traders.values()):
                    if t.period is not None and seen.get(t.user) != t.polls:
                        seen[t.user] = t.polls
                        periods.append(t.period)
                await asyncio.sleep(0.05)
            weight = statistics.mean(p.weight_per_poll for p in pollers)
            rest_429 = sim.stats.rest_429
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        try:
            docs = list(client[db_name].trader_orders.find({"action": "new", "source": "poll"},
                                                           {"timestamp": 1, "createdAt": 1}))
            client.drop_database(db_name)
        finally:
            client.close()
    delays = sorted((d["createdAt"] - d["timestamp"]).total_seconds() for d in docs)
    achieved = statistics.median(periods)
    return {
        "traders": traders, "addresses": addresses, "polled": polled, "optimum_s": optimum, "achieved_s": achieved,
        "worst_s": max(periods), "over_1_5": sum(p > 1.5 * optimum for p in periods) / len(periods),
        "weight": weight, "polls": len(periods), "rest_429": rest_429,
        "delay_median_s": statistics.median(delays) if delays else float("nan"),
        "delay_p95_s": delays[int(0.95 * (len(delays) - 1))] if delays else float("nan"),
        "new_orders": len(delays),
    }


def run(quick: bool = False) -> Section:
    """Measure every size (``quick``: one small size, strongly compressed)."""
    section = Section("polling", "Polling tier: refresh period and single gaps vs the budget-bound optimum")
    scale, sizes, rounds = (40, ((20, 1),), 2.0) if quick else (SCALE, SIZES, 4.0)
    with tempfile.TemporaryDirectory() as tmp:
        nx = NxServer(Path(tmp) / "nx")
        nx.start()
        try:
            results = [asyncio.run(measure(n, a, nx.uri, Path(tmp), scale, rounds)) for n, a in sizes]
        finally:
            nx.stop()
    for r in results:
        n = f"{r['traders']}" if r["addresses"] == 1 else f"{r['traders']} on {r['addresses']} addresses"
        if not r["polled"]:
            section.add(f"{n} traders: followed live", f"{r['live']} of {r['traders']}, none polled")
            continue
        ratio = r["achieved_s"] / r["optimum_s"]
        section.ratio(f"{n} traders ({r['polled']} polled per address): achieved / optimum period", ratio,
                      at_most=1.1)
        section.add(f"{n} traders: period achieved, optimum (at 1200 weight/min)",
                    f"{r['achieved_s'] * scale:.0f} s, {r['optimum_s'] * scale:.0f} s")
        section.ratio(f"{n} traders: worst single gap / optimum", r["worst_s"] / r["optimum_s"], at_most=1.3)
        section.add(f"{n} traders: gaps over 1.5x the optimum", f"{r['over_1_5']:.1%}")
        section.add(f"{n} traders: HTTP 429 answers", f"{r['rest_429']}")
        section.add(f"{n} traders: weight per poll", f"{r['weight']:.1f}")
        section.add(f"{n} traders: new order -> document, median / p95 (at 1200 weight/min)",
                    f"{r['delay_median_s'] * scale:.0f} s / {r['delay_p95_s'] * scale:.0f} s")
        section.add(f"{n} traders: that delay in periods, median", f"{r['delay_median_s'] / r['achieved_s']:.2f}")
        section.checks[f"no_429_at_{r['traders']}"] = r["rest_429"] == 0
    section.notes.append(
        f"time compressed {scale}x (REST budget {scale} x 1200 weight/min on both sides); seconds shown are "
        f"projected to the real budget (x{scale}); {ORDERS_PER_TRADER_PER_MIN:g} order/min per trader, main dex only; "
        "polls measured per size: " + ", ".join(f"{r['traders']}: {r.get('polls', 0)}" for r in results)
    )
    return section
