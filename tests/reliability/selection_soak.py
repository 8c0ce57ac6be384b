"""The acceptance run of choosing whom to follow (#21): a selection from a 30k-row leaderboard
drives one collector over several source addresses, then the leaderboard changes.

One run: the exchange simulator (in this process) trades for ``traders`` traders plus ``2 x churn``
more it keeps off its leaderboard at first, behind a leaderboard of ``leaderboard_rows`` rows;
Dagster's ``leaderboard`` group (in this process, the committed default rules) selects from it and
writes ``trader_watchlist``; one collector child (``TRADER_WATCHLIST_SELECTION=true``, no manual
list) follows the selection from ``addresses`` loopback source addresses (127.0.0.2, ...; the
simulator allows 10 users per address): 10 live per address, the rest polled.

Measured: the achieved poll period (the median gap between two ``frontendOpenOrders`` of one
trader, as the simulator saw them) against the budget optimum (the collector's coverage plan), the
worst gap, the collector's CPU and RSS. Then the leaderboard changes: ranks drift, ``churn`` listed
traders leave it and the ``2 x churn`` hidden ones join; the new list must keep every incumbent
(hysteresis: minimum stay), drop the leavers and take ``churn`` newcomers; each newcomer must be
backfilled (``historicalOrders``) and followed within one poll period, each leaver no longer polled
after one. A truncated document and a much smaller one change nothing and are reported. Then trading
stops and MongoDB is checked against the ground truth (every observable order of the final list
once with its final status, no duplicate for anyone, no HTTP 429).

Time is compressed as in benchmarks/polling.py: the REST budget is ``scale`` x 1200 weight a minute
on both sides, so periods are ``scale`` times shorter; ratios do not change. The sweep interval is
compressed the same way (600 s / ``scale``), and the settle lasts at least one expected sweep period:
an order that never rests (filled at once, IOC cancel, rejected) of a polled trader is recorded only
by that trader's next ``historicalOrders`` sweep, so an uncompressed 600 s sweep after a 180 s settle
counted orders still on their way as missed.

    python -m tests.reliability.selection_soak [--traders 500 --addresses 5]   (make selection-soak)

prints one line of figures and exits 1 unless every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psutil
import pymongo

from collector_service import exchange, schema
from collector_service.config import Settings
from exchange_sim import ExchangeSim, Report, SimConfig, compare
from orderwatch_dagster.leaderboard_assets import leaderboard_assets, leaderboard_checks
from orderwatch_dagster.resources import LeaderboardSource, MongoResource, ParquetStore
from orderwatch_dagster.selection import SELECTION_ENV, load_selection_rules
from tests.mongo_server import NxServer
from tests.reliability.collector_process import CollectorProcess, collector_for
from tests.reliability.relist import WATCH_INTERVAL_S
from tests.reliability.soak import USERS_PER_EGRESS, lifetimes, settle

POLL = "frontendOpenOrders"
SWEEP_INTERVAL_S = float(Settings.model_fields["trader_poll_sweep_interval"].default)


@dataclass
class SelectionSoakConfig:
    traders: int = 500
    addresses: int = 5
    churn: int = 10
    leaderboard_rows: int = 30_000
    scale: int = 10
    rounds: float = 3.0  # poll periods measured
    orders_per_trader_per_min: float = 1.0  # quiet traders, as benchmarks/polling.py
    settle_timeout: float = 180.0  # at least; longer when a sweep round of the polled traders takes longer
    seed: int = 21

    @property
    def egresses(self) -> list[str]:
        return [f"127.0.0.{i + 2}" for i in range(self.addresses)]


@dataclass
class SelectionSoakResult:
    config: SelectionSoakConfig
    report: Report = field(default_factory=Report)
    checks: dict[str, bool] = field(default_factory=dict)
    figures_: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    newcomers: set[str] = field(default_factory=set)
    missed: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    """Each missed order's truth rows, and when the collector started (``started``)."""
    leavers: set[str] = field(default_factory=set)

    def check(self, name: str, passed: bool, detail: object = "") -> None:
        self.checks[name] = passed
        if not passed:
            self.problems.append(f"{name}: {detail}")

    @property
    def ok(self) -> bool:
        return all(self.checks.values()) and self.report.ok and self.report.capture_rate == 1.0

    def figures(self) -> str:
        shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.figures_.items())
        failed = [k for k, v in self.checks.items() if not v]
        return f"selection_soak {shown} {self.report.summary()} failed_checks={failed or 'none'}"


def materialize(store: ParquetStore, url: str, mongo_uri: str, db_name: str) -> dg.ExecuteInProcessResult:
    """One run of the leaderboard group: snapshot, selection, trader_watchlist, checks."""
    with dg.DagsterInstance.ephemeral() as instance:  # disposed of in the thread that made it (SQLite)
        return dg.materialize(
            [*leaderboard_assets, *leaderboard_checks],
            resources={"store": store, "leaderboard_source": LeaderboardSource(url=url),
                       "mongo_db": MongoResource(uri=mongo_uri, database=db_name)},
            instance=instance, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )


def failure(result: dg.ExecuteInProcessResult) -> str:
    errors = [e.step_failure_data.error for e in result.all_events
              if e.event_type_value == "STEP_FAILURE" and e.step_failure_data.error]
    return " | ".join(e.message for e in errors)


def listed(db: pymongo.database.Database) -> set[str]:
    return {d["_id"] for d in db[schema.WATCHLIST].find({"origin": {"$in": list(schema.LISTED_ORIGINS)}})}


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def peak_rss_mib(proc: psutil.Process) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return proc.memory_info().rss / 2**20


async def steady_state(sim: ExchangeSim, collector: CollectorProcess, users: set[str], cfg: SelectionSoakConfig,
                       result: SelectionSoakResult) -> float:
    """Wait until every listed trader is live or polled twice, then measure ``rounds`` poll
    periods: achieved vs optimum period, CPU and RSS. Returns the optimum period (s)."""
    loop = asyncio.get_running_loop()
    polled = sorted(u for u in users if not sim.subscribers(u, None))
    plan = collector.health()["coverage"]
    deadline = loop.time() + 180.0
    while not (len(users) - len(polled) == plan["live"] and all(len(sim.stats.calls(u, POLL)) >= 2 for u in polled)):
        assert loop.time() < deadline, f"not all followed: {len(users) - len(polled)} live, plan {plan}"
        assert collector.running, collector.log_text()[-3000:]
        await asyncio.sleep(0.5)
        polled = sorted(u for u in users if not sim.subscribers(u, None))
        plan = collector.health()["coverage"]
    optimum = float(plan["expected_period_s"])
    proc = psutil.Process(collector.proc.pid if collector.proc else 0)
    cpu0, start = cpu_seconds(proc), loop.time()
    await asyncio.sleep(cfg.rounds * optimum)
    window, cpu = loop.time() - start, cpu_seconds(proc) - cpu0
    gaps = [b - a for u in polled for a, b in itertools.pairwise(sim.stats.calls(u, POLL)) if b >= start]
    achieved = statistics.median(gaps)
    result.figures_.update(
        live=plan["live"], polled=len(polled), polled_per_address=plan["polled_per_address"],
        optimum_s=optimum * cfg.scale, achieved_s=achieved * cfg.scale, ratio=achieved / optimum,
        worst_gap_ratio=max(gaps) / optimum, polls=len(gaps),
        collector_cpu_share=cpu / window, collector_rss_mib=proc.memory_info().rss / 2**20,
        collector_peak_rss_mib=peak_rss_mib(proc),
    )
    result.check("live_and_polled", plan["live"] == cfg.addresses * USERS_PER_EGRESS
                 and len(polled) == len(users) - plan["live"], plan)
    result.check("period_within_1.1x", achieved <= 1.1 * optimum, f"{achieved:.2f} s vs {optimum:.2f} s")
    return optimum


async def change_the_leaderboard(sim: ExchangeSim, db: pymongo.database.Database, hidden: list[str],
                                 run: Any, cfg: SelectionSoakConfig, optimum: float,
                                 result: SelectionSoakResult) -> set[str]:
    """Leavers and newcomers; the list as hysteresis allows; newcomers followed, leavers let go.
    Returns the new list."""
    loop = asyncio.get_running_loop()
    before = listed(db)
    leavers = set(random.Random(cfg.seed).sample(sorted(before), cfg.churn))
    sim.leaderboard.step()
    sim.leaderboard.vanish(sorted(leavers))
    for i, address in enumerate(hidden):
        sim.leaderboard.appear(address, f"newcomer-{i}")
    run_started = loop.time()
    second = await asyncio.to_thread(run)
    after = listed(db)
    added = after - before
    # when the run wrote the list (the collector may have acted on it before the run ended)
    written = max((d["updatedAt"] for d in db[schema.WATCHLIST].find({"_id": {"$in": sorted(added)}})),
                  default=datetime.now(UTC))
    applied = loop.time() - (datetime.now(UTC) - written).total_seconds()
    result.figures_["list_written_at"] = written.time().isoformat()[:12]
    # every incumbent stays (minimum stay), the leavers go, newcomers fill the free places only
    places = min(len(hidden), load_selection_rules().target - len(before - leavers))
    result.check("second_snapshot_ok", second.success, failure(second))
    result.check("hysteresis", after == (before - leavers) | added and len(added) == places
                 and added <= set(hidden), f"{len(before & after)} kept, {len(added)} added (places {places}), "
                 f"{len(before - after)} dropped")
    first_seen: dict[str, float] = {}
    deadline = applied + 3 * optimum + 60.0
    while len(first_seen) < len(added) and loop.time() < deadline:
        for user in added - set(first_seen):
            polls = sim.stats.calls(user, POLL, applied)
            if polls or sim.subscribers(user, None):
                first_seen[user] = polls[0] if polls else loop.time()
        await asyncio.sleep(0.1)
    followed_in = max((t - applied for t in first_seen.values()), default=float("inf"))
    # a newcomer's backfill follows its first poll, within the REST budget: wait for it (counted
    # right at the first polls, 100 traders' tight budget once read 0 of 6 backfills done)
    while True:
        backfilled = [u for u in added if sim.stats.calls(u, "historicalOrders", run_started)]
        if len(backfilled) == len(added) or loop.time() >= deadline:
            break
        await asyncio.sleep(0.1)
    result.newcomers, result.leavers = added, leavers
    result.figures_.update(newcomers=len(added), newcomers_followed_in_s=followed_in * cfg.scale,
                           newcomers_backfilled=len(backfilled))
    result.check("newcomers_followed_within_a_period", followed_in <= optimum + WATCH_INTERVAL_S + 1.0,
                 f"{followed_in:.1f} s, period {optimum:.1f} s")
    result.check("newcomers_backfilled", len(backfilled) == len(added), f"{len(backfilled)} of {len(added)}")
    quiet_from = applied + optimum + WATCH_INTERVAL_S + 1.0  # a poll in flight at the change may still land
    await asyncio.sleep(max(0.0, quiet_from + optimum - loop.time()))
    still = [u for u in leavers if sim.stats.calls(u, POLL, quiet_from) or sim.subscribers(u, None)]
    result.figures_["leavers_still_followed"] = len(still)
    result.check("leavers_let_go", not still, still[:5])

    spoilers = (("truncated", sim.leaderboard.truncate_next, "leaderboard snapshot rejected"),
                ("much_smaller", lambda: sim.leaderboard.limit_next(len(after) // 4), "selection refused"))
    for name, spoil, expect in spoilers:
        spoil()
        bad = await asyncio.to_thread(run)
        result.check(f"{name}_snapshot_reported", not bad.success and expect in failure(bad), failure(bad))
        result.check(f"{name}_snapshot_changes_nothing", listed(db) == after, len(listed(db)))
    return after


async def run_selection_soak(cfg: SelectionSoakConfig, mongo_uri: str, db_name: str,
                             workdir: Path) -> SelectionSoakResult:
    """One run (see the module docstring)."""
    os.environ.pop(SELECTION_ENV, None)  # the committed default rules
    result = SelectionSoakResult(cfg)
    budget = exchange.REST_WEIGHT_PER_MINUTE * cfg.scale
    truth = workdir / "truth.jsonl"
    workdir.mkdir(parents=True, exist_ok=True)
    sim_cfg = SimConfig(seed=cfg.seed, traders=cfg.traders + 2 * cfg.churn, push_interval=1.0,
                        orders_per_trader_per_min=cfg.orders_per_trader_per_min, rest_weight_per_min=budget,
                        hip3_dexes=False, leaderboard_rows=cfg.leaderboard_rows, truth_file=truth)
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True)
    db = client[db_name]
    store = ParquetStore(data_dir=str(workdir / "dagster"))
    try:
        async with ExchangeSim(sim_cfg) as sim:
            hidden = sim.addresses[cfg.traders:]
            sim.leaderboard.vanish(hidden)

            def run() -> dg.ExecuteInProcessResult:
                return materialize(store, sim.leaderboard_url, mongo_uri, db_name)

            started = time.monotonic()
            first = await asyncio.to_thread(run)
            result.figures_["selection_run_s"] = time.monotonic() - started
            chosen = listed(db)
            result.check("first_snapshot_ok", first.success, failure(first))
            result.check("selects_the_traders_who_trade", chosen == set(sim.addresses[:cfg.traders]), len(chosen))
            collector = collector_for(
                sim, mongo_uri, db_name, workdir, [], trader_watchlist_selection=True,
                trader_watch_interval=WATCH_INTERVAL_S, trader_ws_source_addresses=",".join(cfg.egresses),
                trader_ws_max_users_per_ip=USERS_PER_EGRESS, collector_rest_weight_per_minute=budget,
                trader_poll_min_interval=0.2, trader_orders_ws_flush_interval=0.5,
                trader_poll_sweep_interval=SWEEP_INTERVAL_S / cfg.scale,
            )
            try:
                collector.start()
                result.figures_["collector_started"] = datetime.now(UTC).time().isoformat()[:12]
                await collector.wait_for_log("event=state_loaded", timeout=120.0)
                optimum = await steady_state(sim, collector, chosen, cfg, result)
                final = await change_the_leaderboard(sim, db, hidden, run, cfg, optimum, result)
                sim.set_order_rate(0)
                # every polled trader is swept once more after trading stopped (see the module docstring)
                sweep_period = max(p["expected_sweep_period_s"] for p in collector.health()["tiers"]["polled"].values())
                result.figures_["sweep_period_s"] = sweep_period * cfg.scale
                result.figures_["settle_s"], result.figures_["pending_at_settle_end"] = await settle(
                    sim, db, truth, sorted(final), max(cfg.settle_timeout, 1.5 * sweep_period), collector)
                result.figures_["rest_429_collector"] = collector.health()["rest_429"]
                exit_code = await asyncio.to_thread(collector.terminate)
            finally:
                collector.stop_if_running()
            result.check("sigterm_exit_0", exit_code == 0, exit_code)
            result.figures_["rest_429"] = sim.stats.rest_429
            result.check("no_429", sim.stats.rest_429 == 0 and result.figures_["rest_429_collector"] == 0,
                         sim.stats.rest_429)
        result.report = await asyncio.to_thread(compare, db.trader_orders, truth, None, sorted(final))
        result.missed = lifetimes(truth, [*result.report.missed_visible, *result.report.missed_gap_only])
        everyone = await asyncio.to_thread(compare, db.trader_orders, truth, None, None)
        result.check("no_duplicates_for_anyone", not everyone.duplicates, everyone.duplicates[:5])
        return result
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    d = SelectionSoakConfig()
    p = argparse.ArgumentParser(prog="python -m tests.reliability.selection_soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--traders", type=int, default=d.traders, help=f"listed traders (default {d.traders})")
    p.add_argument("--addresses", type=int, default=d.addresses, help=f"source addresses (default {d.addresses})")
    p.add_argument("--churn", type=int, default=d.churn, help=f"leavers, and half the newcomers (default {d.churn})")
    p.add_argument("--leaderboard-rows", type=int, default=d.leaderboard_rows)
    p.add_argument("--scale", type=int, default=d.scale, help=f"REST budget x 1200 weight/min (default {d.scale})")
    p.add_argument("--orders-per-trader-per-min", type=float, default=d.orders_per_trader_per_min)
    p.add_argument("--rounds", type=float, default=d.rounds, help=f"poll periods measured (default {d.rounds:g})")
    a = p.parse_args(argv)
    cfg = SelectionSoakConfig(traders=a.traders, addresses=a.addresses, churn=a.churn,
                              leaderboard_rows=a.leaderboard_rows, scale=a.scale, rounds=a.rounds,
                              orders_per_trader_per_min=a.orders_per_trader_per_min)
    with tempfile.TemporaryDirectory(prefix="orderwatch-selection-soak-") as tmp:
        server = NxServer(Path(tmp) / "nx")
        server.start()
        try:
            result = asyncio.run(run_selection_soak(cfg, server.uri, "selection_soak", Path(tmp) / "run"))
        finally:
            server.stop()
    print(result.figures(), flush=True)
    if not result.ok:
        r = result.report
        print(f"FAILED {result.problems} missed={result.missed} duplicates={r.duplicates[:10]} "
              f"wrong_final_status={r.wrong_final_status[:10]} newcomers={sorted(result.newcomers)}",
              file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
