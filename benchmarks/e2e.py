"""Benchmark 2: exchange simulator at full push rate -> collector -> MongoDB, end to end.

Three processes: the simulator (a small runner around ``ExchangeSim`` so that trading can be
stopped before the ground-truth check), the real collector (``python -m collector_service
run``) and nx-27017 (or the server in ``MONGO_URI``). Over a measured window: frames and events
per second, the collector's CPU time per frame (psutil), and the latency from an order's
transition on the exchange to its document being readable in MongoDB. Then trading stops, the
collector catches up, and the simulator's ground truth must show zero loss and zero duplicates.

How latency is measured (see :func:`latencies`):

* change time: the wall clock when the simulator made the transition (the runner records
  ``time.time()`` next to every truth line; the truth file's own ``time`` is the simulator's
  logical clock, which drops the fraction of a millisecond at every 0.1 s tick and so runs
  behind the wall clock by about 5 ms per second of the run).
* document time: when a poller (every 50 ms) first reads the document; the time taken is when
  the poll's query started, so a figure is at most one poll interval (+ query time) high.
* counted ("live"): an order's opening (``new``) and its first terminal status (``closed``)
  that happened inside the measured window, while the collector was subscribed to the order's
  (trader, dex), and whose document came from a WebSocket snapshot. Not counted, but reported:
  documents recovered over REST (orders the feed never showed, and the start-up gap), and
  transitions from before the window (orders already resting when a subscription started show
  up as ``new`` at the first snapshot, however long ago they were placed). A partial fill is an
  ``open`` line of an order already open; it is not matched to any document.

The window starts only when every (trader, dex) subscription is live and has been pushed at
least once, so start-up (subscribing hundreds of feeds at the exchange's pacing) is not
measured. Every trader has a live slot and the polling tier is off (``benchmarks.polling``
measures that tier).

``python -m benchmarks.e2e measure --repeat 3 --window 20 --trace DIR`` runs the benchmark on
its own, several times, and with ``--trace`` keeps per-transition stage timestamps (change,
push, receive, journal append, flush, readable) for attribution.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pymongo

from benchmarks.measure import mongo_server
from benchmarks.report import Section
from collector_service import schema
from exchange_sim import ExchangeSim, SimConfig, compare
from exchange_sim.market import MAIN_DEX, Market, dex_of
from tests.mongo_server import free_port

FLUSH_INTERVAL = 0.2
POLL_S = 0.05
SETTLE_TIMEOUT_S = 300.0
COVERAGE_TIMEOUT_S = 120.0
WARMUP_S = 2.0  # after every subscription is live, before the window opens


# ----- the simulator child --------------------------------------------------------------------


def _subscriptions_needed(traders: int) -> int:
    """Subscriptions the collector holds: openOrders + clearinghouseState per trader and perp dex,
    with room to spare (a cap below it refuses traders, who are then followed only by REST)."""
    return 4 * traders * (1 + len(Market.load(hip3_dexes=True).dexes))


async def _serve_sim(args: argparse.Namespace) -> None:
    """Child mode: run the simulator; SIGUSR1 stops trading, SIGTERM stops it (writing the truth).

    Next to the truth file it writes ``<truth>.wall``: the wall clock of every truth line, one a
    line, in the same order. With ``--trace`` also ``<truth>.pushes.json``: when each (trader,
    dex) order feed was pushed.
    """
    stop = asyncio.Event()
    cfg = SimConfig(port=args.port, traders=args.traders, push_interval=args.push_interval,
                    orders_per_trader_per_min=args.rate, truth_file=args.truth, max_users_per_ip=args.traders,
                    max_subscriptions_per_ip=_subscriptions_needed(args.traders), max_messages_per_min=100_000,
                    max_connections_per_ip=100)
    wall = open(args.truth + ".wall", "w")  # noqa: SIM115 - closed below, after the simulator
    pushes: dict[str, list[float]] = {}
    async with ExchangeSim(cfg) as sim:
        # after the recorder's listener: one wall-clock line per truth line
        sim.exchange.listeners.append(lambda *_: wall.write(f"{time.time():.6f}\n"))
        send_sub = getattr(sim, "_send_sub", None)  # private: instrumentation only, skipped if gone
        if args.trace and send_sub is not None:

            async def traced(*a: Any, **kw: Any) -> None:
                sub = next((x for x in a if isinstance(x, dict) and "type" in x), None)
                if sub is not None and sub["type"] in ("openOrders", "webData2"):
                    pushes.setdefault(f"{sub['user']}|{sub.get('dex', '')}", []).append(time.time())
                await send_sub(*a, **kw)

            sim._send_sub = traced  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, sim.set_order_rate, 0.0)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        Path(args.addresses).write_text("".join(a + "\n" for a in sim.addresses))
        print("ready", flush=True)
        await stop.wait()
    wall.close()
    if args.trace:
        Path(args.truth + ".pushes.json").write_text(json.dumps(pushes))


# ----- measuring ------------------------------------------------------------------------------


class Poller(threading.Thread):
    """Records when each (ethAddress, oid, eventKey) document first becomes readable.

    ``seen[key]`` is ``(poll time, source, observedAt, createdAt)``; the poll time is taken
    before the query, so it is an upper bound on when the document became readable.
    """

    def __init__(self, coll: Any) -> None:
        super().__init__(daemon=True)
        self.coll, self.running = coll, True
        self.seen: dict[tuple[str, int, str], tuple[float, str, float, float]] = {}
        self.since = datetime.now(UTC) - timedelta(seconds=5)
        self.query_s: list[float] = []

    def run(self) -> None:
        proj = {"_id": 0, "ethAddress": 1, "oid": 1, "eventKey": 1, "createdAt": 1, "observedAt": 1, "source": 1}
        while self.running:
            now = time.time()
            newest = self.since
            for d in self.coll.find({"createdAt": {"$gte": self.since - timedelta(seconds=2)}}, proj):
                key = (d["ethAddress"], d["oid"], d["eventKey"])
                if key not in self.seen:
                    self.seen[key] = (now, d.get("source", ""), d["observedAt"].timestamp(),
                                      d["createdAt"].timestamp())
                newest = max(newest, d["createdAt"])
            self.query_s.append(time.time() - now)
            self.since = newest
            time.sleep(POLL_S)


def _health(port: int) -> dict[str, Any]:
    """The collector's /healthz document (also when it answers 503, not ok)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


@dataclass
class Settle:
    """What the collector still had to do when trading stopped, and when each part was done
    (seconds after the stop; None: not done within the timeout)."""

    seconds: float = 0.0
    outcomes_at_stop: int = 0
    gaps_at_stop: int = 0
    journal_at_stop: int = 0
    outcomes_done: float | None = None
    gaps_done: float | None = None
    journal_done: float | None = None
    calls: dict[str, int] = field(default_factory=dict)  # info calls made while settling, by type
    from_feed: tuple[int, int] = (0, 0)  # outcomes the orderUpdates feed told: before the stop, while settling
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)  # (t, outcomes, gaps, journal)


def _settle(port: int, recoveries: Any, timeout: float) -> Settle:
    """Seconds until the collector has no outcome to resolve, no gap to recover over REST (the
    start-up gap of every trader) and nothing left to write; with what was pending at the stop,
    when each part reached zero, and the info calls made meanwhile.

    Outcomes and gap recoveries come from the info API under its weight budget, so after a burst
    of closes, or a start with many traders, they trail the events by as long as the budget takes
    to serve them.
    """
    out = Settle()
    started = time.monotonic()
    calls0 = _metric(port, "orderwatch_rest_calls_total")
    feed0 = _metric(port, "orderwatch_outcomes_from_feed_total").get("", 0)
    time.sleep(FLUSH_INTERVAL * 3)  # the last pushes reach the collector
    while time.monotonic() - started < timeout:
        health = _health(port)
        now = time.monotonic() - started
        sample = (now, health["outcomes_pending"], recoveries.count_documents({}), health["buffer_depth"])
        if not out.samples:
            out.outcomes_at_stop, out.gaps_at_stop, out.journal_at_stop = sample[1:]
        out.samples.append(sample)
        for name, value in zip(("outcomes_done", "gaps_done", "journal_done"), sample[1:], strict=True):
            if value == 0 and getattr(out, name) is None:
                setattr(out, name, now)
            elif value:
                setattr(out, name, None)
        if not any(sample[1:]):
            break
        time.sleep(0.5)
    time.sleep(FLUSH_INTERVAL * 2)  # the last outcomes are flushed
    out.seconds = time.monotonic() - started
    calls = _metric(port, "orderwatch_rest_calls_total")
    out.calls = {k: int(v - calls0.get(k, 0)) for k, v in calls.items() if v > calls0.get(k, 0)}
    out.from_feed = (int(feed0), int(_metric(port, "orderwatch_outcomes_from_feed_total").get("", 0) - feed0))
    return out


def least_weight(calls: dict[str, int]) -> int:
    """The least REST weight these info calls cost: each its base weight (rows add more)."""
    return sum(n * (2 if kind in ("orderStatus", "clearinghouseState", "l2Book") else 20) for kind, n in calls.items())


def _metric(port: int, name: str) -> dict[str, float]:
    """One Prometheus counter of the collector, by its label's value ("" for one without labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            label, value = line.rsplit(" ", 1)
            out[label.split('"')[1]] = float(value)
        elif line.startswith(name + " "):
            out[""] = float(line.rsplit(" ", 1)[1])
    return out


def _frames(port: int) -> int:
    """Frames decoded so far, from the collector's Prometheus ``orderwatch_frames_total``."""
    return int(sum(_metric(port, "orderwatch_frames_total").values()))


def _live_feeds(visibility: Path) -> set[tuple[str, str]]:
    """(trader, dex) order feeds with a live subscription, from the simulator's records so far."""
    live: set[tuple[str, str]] = set()
    if visibility.exists():
        for line in visibility.read_text().splitlines():
            rec = json.loads(line) if line.endswith("}") else None
            if rec and rec.get("kind") == "coverage":
                key = (rec["user"], rec.get("dex", ""))
                (live.add if rec["live"] else live.discard)(key)
    return live


def _wait_for_coverage(visibility: Path, users: list[str], timeout: float) -> float:
    """Wait until every trader's order feed is subscribed on every dex; seconds waited."""
    expected = {(u, d) for u in users for d in (MAIN_DEX, *Market.load(hip3_dexes=True).dexes)}
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if expected <= _live_feeds(visibility):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"not every (trader, dex) subscribed within {timeout:.0f} s")


@dataclass
class Transition:
    """One counted order transition and, when known, the times of its stages (epoch seconds)."""

    user: str
    oid: int
    key: str  # "new" | "closed"
    changed: float  # wall clock of the transition on the exchange
    readable: float  # first poll that read its document
    source: str
    observed: float  # the collector's observedAt (frame received)
    created: float  # createdAt (journal append)
    pushed: float | None = None  # first push of the (trader, dex) feed at or after the change

    @property
    def latency(self) -> float:
        return self.readable - self.changed


@dataclass
class Latencies:
    live: list[Transition] = field(default_factory=list)
    rest: list[Transition] = field(default_factory=list)  # documents from the info API (recovery, polls)
    before_window: int = 0
    not_covered: int = 0
    not_seen: int = 0
    clock_lag: list[float] = field(default_factory=list)  # wall clock - truth file's logical time


def latencies(
    truth: Path,
    seen: dict[tuple[str, int, str], tuple[float, str, float, float]],
    *,
    window: tuple[float, float] = (float("-inf"), float("inf")),
    pushes: dict[str, list[float]] | None = None,
) -> Latencies:
    """Classify each order's opening / first terminal status and time it to its document.

    ``window`` is (start, end) in wall-clock seconds: transitions outside it are not counted.
    """
    wall_path = Path(str(truth) + ".wall")
    walls = [float(x) for x in wall_path.read_text().split()] if wall_path.exists() else []
    visibility = Path(str(truth) + ".visibility.jsonl")
    coverage: list[tuple[int, tuple[str, str], bool]] = []
    if visibility.exists():
        for line in visibility.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("kind") == "coverage":
                coverage.append((rec["truthRow"], (rec["user"], rec.get("dex", "")), rec["live"]))
    lines = truth.read_text().splitlines()
    if len(walls) != len(lines):  # not one wall-clock line per truth line: use the logical clock
        walls = []
    out = Latencies()
    live: set[tuple[str, str]] = set()
    cov_i = 0
    opened: set[int] = set()
    closed: set[int] = set()
    for row, line in enumerate(lines):
        while cov_i < len(coverage) and coverage[cov_i][0] <= row:
            _, feed, up = coverage[cov_i]
            (live.add if up else live.discard)(feed)
            cov_i += 1
        t = json.loads(line)
        oid, user, status = t["order"]["oid"], t["user"], t["status"]
        if status == "open":
            if oid in opened:
                continue  # a partial fill or an in-place amend: no new/closed document
            opened.add(oid)
            key = "new"
        else:
            if oid not in opened or oid in closed:
                continue  # never rested (reject, Ioc), or a second terminal line (triggered -> filled)
            closed.add(oid)
            key = "closed"
        logical = datetime.fromisoformat(t["time"]).replace(tzinfo=UTC).timestamp()
        changed = walls[row] if row < len(walls) else logical
        out.clock_lag.append(changed - logical)
        if not window[0] <= changed <= window[1]:
            out.before_window += changed < window[0]
            continue
        doc = seen.get((user, oid, key))
        if doc is None:
            out.not_seen += 1
            continue
        dex = dex_of(t["order"].get("coin", ""))
        item = Transition(user, oid, key, changed, *doc)
        if item.source != "ws":
            out.rest.append(item)
        elif coverage and (user, dex) not in live:
            out.not_covered += 1
        else:
            if pushes is not None:
                times = pushes.get(f"{user}|{dex}", [])
                i = bisect_left(times, changed)
                item.pushed = times[i] if i < len(times) else None
            out.live.append(item)
    return out


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank of sorted ``values``."""
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def spread(values: list[float]) -> str:
    """p50 / p95 / p99 / max in milliseconds."""
    return " / ".join(f"{pct(values, q) * 1000:.0f}" for q in (0.5, 0.95, 0.99, 1.0))


_FLUSH_LINE = re.compile(r"^(\S+ \S+) level=INFO logger=collector_service.store Flushed (\d+) .*ops=(\d+) "
                         r".*took_ms=(\d+)")


def flushes_from_log(log: Path) -> list[tuple[float, float, int]]:
    """(start, end, ops) of every flush the collector logged at INFO (its log time is the end)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = _FLUSH_LINE.match(line)
        if m:
            end = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
            out.append((end - int(m.group(4)) / 1000, end, int(m.group(3))))
    return out


def attribution(items: list[Transition], flushes: list[tuple[float, float, int]] | None) -> dict[str, list[float]]:
    """Seconds spent in each stage, per transition, where both ends are known."""
    stages: dict[str, list[float]] = {"exchange -> push": [], "push -> received": [], "received -> journal": [],
                                      "journal -> readable": [], "journal -> flush start": [], "flush": [],
                                      "flush end -> readable": []}
    starts = [f[0] for f in flushes or []]
    for t in items:
        if t.pushed is not None:
            stages["exchange -> push"].append(t.pushed - t.changed)
            stages["push -> received"].append(t.observed - t.pushed)
        stages["received -> journal"].append(t.created - t.observed)
        stages["journal -> readable"].append(t.readable - t.created)
        if flushes:
            i = bisect_left(starts, t.created)
            if i < len(flushes):
                start, end, _ = flushes[i]
                stages["journal -> flush start"].append(start - t.created)
                stages["flush"].append(end - start)
                stages["flush end -> readable"].append(t.readable - end)
    return {k: v for k, v in stages.items() if v}


def run(
    quick: bool = False,
    *,
    traders: int | None = None,
    window: float | None = None,
    trace: Path | None = None,
) -> Section:
    section = Section("e2e", "2. End to end: simulator -> collector -> MongoDB")
    n, push, rate, secs = (10, 0.1, 60, 8) if quick else (100, 0.05, 30, 60)
    traders, window = traders or n, window or secs
    with tempfile.TemporaryDirectory() as tmp_name, mongo_server(Path(tmp_name)) as (uri, nx):
        tmp = Path(tmp_name)
        db_name = f"ow_bench_{os.getpid()}"
        truth, addresses = tmp / "truth.jsonl", tmp / "addresses.txt"
        sim_port, health_port = free_port(), free_port()
        sim = subprocess.Popen([sys.executable, "-m", "benchmarks.e2e", "sim", "--port", str(sim_port), "--traders",
                                str(traders), "--push-interval", str(push), "--rate", str(rate), "--truth", str(truth),
                                "--addresses", str(addresses), *(["--trace"] if trace else [])],
                               stdout=subprocess.PIPE, text=True)
        collector = None
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        try:
            assert sim.stdout is not None and sim.stdout.readline().strip() == "ready"
            env = os.environ | {
                "MONGO_URI": uri, "MONGO_DB": db_name, "HYPERLIQUID_WS_URL": f"ws://127.0.0.1:{sim_port}/ws",
                "HYPERLIQUID_INFO_URL": f"http://127.0.0.1:{sim_port}/info", "TRADER_ADDRESSES_FILE": str(addresses),
                "TRADER_WS_FEED": "openOrders", "TRADER_WS_MAX_USERS_PER_IP": str(traders),
                "TRADER_ORDERS_WS_FLUSH_INTERVAL": str(FLUSH_INTERVAL), "COLLECTOR_DATA_DIR": str(tmp / "collector"),
                "COLLECTOR_HEALTH_PORT": str(health_port), "COLLECTOR_LOG_LEVEL": "INFO" if trace else "WARNING",
                # the live tier only: every trader has a live slot, so the polling tier would have
                # nobody to poll yet keep 60 % of the REST budget, slowing start-up recovery
                "TRADER_POLL_ENABLED": "false",
            }
            with (tmp / "collector.log").open("w") as log:
                collector = subprocess.Popen([sys.executable, "-m", "collector_service", "run"], env=env, stderr=log)
            coll = client[db_name]["trader_orders"]
            deadline = time.monotonic() + 60
            while True:
                try:
                    h0 = _health(health_port)
                    if h0.get("ok") and _frames(health_port) > traders:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"collector not healthy within 60 s; see {tmp / 'collector.log'}")
                time.sleep(0.2)
            users = addresses.read_text().split()
            visibility = Path(str(truth) + ".visibility.jsonl")
            subscribing = _wait_for_coverage(visibility, users, COVERAGE_TIMEOUT_S)
            time.sleep(WARMUP_S)  # the last subscriptions get their first push
            poller = Poller(coll)
            poller.start()
            proc = psutil.Process(collector.pid)
            others = {"simulator": psutil.Process(sim.pid)}
            if nx is not None and nx.proc is not None:
                others["nx-27017"] = psutil.Process(nx.proc.pid)
            others_cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in others.items()}
            cpu0, t0, h0, f0 = sum(proc.cpu_times()[:2]), time.monotonic(), _health(health_port), _frames(health_port)
            w0 = time.time()
            time.sleep(window)
            w1 = time.time()
            cpu1, t1, h1, f1 = sum(proc.cpu_times()[:2]), time.monotonic(), _health(health_port), _frames(health_port)
            others_cpu = {k: sum(p.cpu_times()[:2]) - others_cpu0[k] for k, p in others.items()}
            os.kill(sim.pid, signal.SIGUSR1)  # stop trading; pushes go on while the collector catches up
            settle = _settle(health_port, client[db_name][schema.RECOVERIES], timeout=SETTLE_TIMEOUT_S)
            poller.running = False
            poller.join(10)
            collector.send_signal(signal.SIGTERM)
            collector.wait(60)
            sim.send_signal(signal.SIGTERM)
            sim.wait(60)
            frames = f1 - f0
            events = sum(h1["events_written"].values()) - sum(h0["events_written"].values())
            elapsed = t1 - t0
            report = compare(coll, truth, users=users)
            pushes_file = Path(str(truth) + ".pushes.json")
            pushes = json.loads(pushes_file.read_text()) if pushes_file.exists() else None
            lat = latencies(truth, poller.seen, window=(w0, w1), pushes=pushes)
            live = [t.latency for t in lat.live]
            section.add("traders / push interval / flush interval", f"{traders} / {push} s / {FLUSH_INTERVAL} s")
            section.add("frames/s sustained (collector)", f"{frames / elapsed:,.0f}")
            section.add("events written/s", f"{events / elapsed:,.0f}")
            section.add("collector CPU per frame", f"{(cpu1 - cpu0) / max(frames, 1) * 1e6:.0f} µs")
            section.add("collector CPU use", f"{(cpu1 - cpu0) / elapsed * 100:.0f} % of one core")
            section.add("simulator / nx-27017 CPU use (same 2 cores)",
                        " / ".join(f"{v / elapsed * 100:.0f} %" for v in others_cpu.values()))
            if live:
                section.add("change -> document in MongoDB, live: p50 / p95 / p99 / max",
                            f"{spread(live)} ms", f"p99 <= {(FLUSH_INTERVAL + 1) * 1000:.0f} ms",
                            pct(live, 0.99) <= FLUSH_INTERVAL + 1)
            if lat.rest:
                sources = "/".join(sorted({t.source for t in lat.rest}))
                section.add(f"documents from the info API ({sources}, not live): p50 / p95 / p99 / max",
                            f"{spread([t.latency for t in lat.rest])} ms")
            section.add("settle after trading stopped (outcomes resolved, gaps recovered, journal empty)",
                        f"{settle.seconds:.1f} s")
            section.add("at the stop: outcomes pending / gaps to recover / journal ops",
                        f"{settle.outcomes_at_stop} / {settle.gaps_at_stop} / {settle.journal_at_stop}")
            section.add("after the stop, done at: outcomes / gaps / journal",
                        " / ".join("-" if t is None else f"{t:.1f} s"
                                   for t in (settle.outcomes_done, settle.gaps_done, settle.journal_done)))
            section.add("info calls while settling (least weight they cost)",
                        (", ".join(f"{k} {v}" for k, v in sorted(settle.calls.items())) or "none")
                        + f" ({least_weight(settle.calls):,})")
            section.add("outcomes told by orderUpdates (no info call): before the stop / while settling",
                        " / ".join(str(n) for n in settle.from_feed))
            section.add("ground truth", report.summary())
            section.checks["zero_loss"] = not report.missed_visible and not report.missed_gap_only
            section.checks["zero_duplicates"] = not report.duplicates
            section.checks["final_statuses_right"] = not report.wrong_final_status
            section.checks["orders_observed"] = report.observable > 0 and frames > 0
            server = "MONGO_URI" if nx is None else "nx-27017"
            section.notes.append(
                f"{server}; window {window:.0f} s opened {subscribing + WARMUP_S:.0f} s after the collector was "
                f"healthy, once every feed was subscribed; latency poll every {POLL_S * 1000:.0f} ms (query "
                f"p50 {pct(poller.query_s, 0.5) * 1000:.0f} ms); {len(lat.live)} live transitions "
                f"(new + first terminal status), {len(lat.rest)} from the info API, "
                f"{lat.before_window} before the window, {lat.not_covered} while unsubscribed, "
                f"{lat.not_seen} without a document")
            if trace:
                trace.mkdir(parents=True, exist_ok=True)
                flushes = flushes_from_log(tmp / "collector.log")
                stages = attribution(lat.live, flushes)
                if lat.clock_lag:
                    section.add("simulator logical clock behind wall clock: p50 / max",
                                f"{pct(lat.clock_lag, 0.5) * 1000:.0f} / {max(lat.clock_lag) * 1000:.0f} ms")
                for name, values in stages.items():
                    section.add(f"stage {name}: p50 / p95 / p99 / max", f"{spread(values)} ms")
                (trace / "transitions.json").write_text(json.dumps(
                    {"window": [w0, w1], "live": [t.__dict__ for t in lat.live],
                     "rest": [t.__dict__ for t in lat.rest], "flushes": flushes,
                     "poll_query_s": poller.query_s, "settle": settle.__dict__}))
                for name in ("collector.log",):
                    (trace / name).write_bytes((tmp / name).read_bytes())
        finally:
            for p in (collector, sim):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
            client.drop_database(db_name)
            client.close()
    return section


def _measure(args: argparse.Namespace) -> int:
    """Run the benchmark ``--repeat`` times and print each run's table."""
    from benchmarks.report import table

    for i in range(args.repeat):
        trace = args.trace / f"run{i + 1}" if args.trace else None
        section = run(args.quick, traders=args.traders, window=args.window, trace=trace)
        print(f"--- run {i + 1}/{args.repeat}", flush=True)
        print(table([section]), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    sub = parser.add_subparsers(dest="mode", required=True)
    child = sub.add_parser("sim", help="run the exchange simulator for benchmark 2 (a child process)")
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--traders", type=int, required=True)
    child.add_argument("--push-interval", type=float, required=True)
    child.add_argument("--rate", type=float, required=True)
    child.add_argument("--truth", required=True)
    child.add_argument("--addresses", required=True)
    child.add_argument("--trace", action="store_true")
    measure = sub.add_parser("measure", help="run the end-to-end benchmark alone, repeatedly")
    measure.add_argument("--quick", action="store_true")
    measure.add_argument("--traders", type=int)
    measure.add_argument("--window", type=float, help="measured seconds (default 60, quick 8)")
    measure.add_argument("--repeat", type=int, default=1)
    measure.add_argument("--trace", type=Path, help="keep per-transition stage times and logs here")
    ns = parser.parse_args()
    if ns.mode == "sim":
        asyncio.run(_serve_sim(ns))
    else:
        sys.exit(_measure(ns))
