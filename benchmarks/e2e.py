"""Benchmark 2: exchange simulator at full push rate -> collector -> MongoDB, end to end.

Three processes: the simulator (a small runner around ``ExchangeSim`` so that trading can be
stopped before the ground-truth check), the real collector (``python -m collector_service
run``) and nx-27017 (or the server in ``MONGO_URI``). Over a measured window: frames and events
per second, the collector's CPU time per frame (psutil), and the latency from an order's
transition on the exchange to its document being readable in MongoDB (a poller reads new
documents every 50 ms). Then trading stops, the collector catches up, and the simulator's
ground truth must show zero loss and zero duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pymongo

from benchmarks.report import Section
from exchange_sim import ExchangeSim, SimConfig, compare
from tests.mongo_server import NxServer, free_port

FLUSH_INTERVAL = 0.2
POLL_S = 0.05


async def _serve_sim(args: argparse.Namespace) -> None:
    """Child mode: run the simulator; SIGUSR1 stops trading, SIGTERM stops it (writing the truth)."""
    stop = asyncio.Event()
    cfg = SimConfig(port=args.port, traders=args.traders, push_interval=args.push_interval,
                    orders_per_trader_per_min=args.rate, truth_file=args.truth, max_users_per_ip=args.traders,
                    max_subscriptions_per_ip=4 * args.traders, max_messages_per_min=100_000,
                    max_connections_per_ip=100)
    async with ExchangeSim(cfg) as sim:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, sim.set_order_rate, 0.0)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        Path(args.addresses).write_text("".join(a + "\n" for a in sim.addresses))
        print("ready", flush=True)
        await stop.wait()
        print(json.dumps(sim.stats.__dict__ if hasattr(sim.stats, "__dict__") else {}), flush=True)


class Poller(threading.Thread):
    """Records when each (ethAddress, oid, eventKey) document first becomes readable."""

    def __init__(self, coll: Any) -> None:
        super().__init__(daemon=True)
        self.coll, self.seen, self.running = coll, {}, True
        self.since = datetime.now(UTC) - timedelta(seconds=5)

    def run(self) -> None:
        proj = {"_id": 0, "ethAddress": 1, "oid": 1, "eventKey": 1, "createdAt": 1}
        while self.running:
            now = time.time()
            newest = self.since
            for d in self.coll.find({"createdAt": {"$gte": self.since - timedelta(seconds=2)}}, proj):
                self.seen.setdefault((d["ethAddress"], d["oid"], d["eventKey"]), now)
                newest = max(newest, d["createdAt"])
            self.since = newest
            time.sleep(POLL_S)


SETTLE_TIMEOUT_S = 300.0


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return json.loads(r.read())


def _settle(port: int, timeout: float) -> float:
    """Seconds until the collector has no outcome to resolve and nothing left to write.

    Outcomes come from the info API under its weight budget, so after a burst of closes they
    trail the events by as long as the budget takes to serve them.
    """
    started = time.monotonic()
    time.sleep(FLUSH_INTERVAL * 3)  # the last pushes reach the collector
    while time.monotonic() - started < timeout:
        health = _health(port)
        if health["outcomes_pending"] == 0 and health["buffer_depth"] == 0:
            break
        time.sleep(0.5)
    time.sleep(FLUSH_INTERVAL * 2)  # the last outcomes are flushed
    return time.monotonic() - started


def _frames(port: int) -> int:
    """Frames decoded so far, from the collector's Prometheus ``orderwatch_frames_total``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("orderwatch_frames_total{")))


def latencies(truth: Path, seen: dict[tuple[str, int, str], float]) -> list[float]:
    """Seconds from each order's opening / closing on the exchange to its document in MongoDB."""
    out, opened = [], set()
    for line in truth.read_text().splitlines():
        t = json.loads(line)
        oid, user = t["order"]["oid"], t["user"]
        key = (user, oid, "new") if oid not in opened else (user, oid, "closed")
        if t["status"] == "open":
            opened.add(oid)
        at = datetime.fromisoformat(t["time"]).replace(tzinfo=UTC).timestamp()
        if key in seen and (t["status"] == "open" or key[2] == "closed"):
            out.append(seen.pop(key) - at)
    return out


def run(quick: bool = False) -> Section:
    section = Section("e2e", "2. End to end: simulator -> collector -> MongoDB")
    traders, push, rate, window = (20, 0.1, 60, 8) if quick else (100, 0.05, 30, 60)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nx = None
        uri = os.environ.get("MONGO_URI")
        if not uri:
            nx = NxServer(tmp / "nx")
            nx.start()
            uri = nx.uri
        db_name = f"ow_bench_{os.getpid()}"
        truth, addresses = tmp / "truth.jsonl", tmp / "addresses.txt"
        sim_port, health_port = free_port(), free_port()
        sim = subprocess.Popen([sys.executable, "-m", "benchmarks.e2e", "--port", str(sim_port), "--traders",
                                str(traders), "--push-interval", str(push), "--rate", str(rate), "--truth", str(truth),
                                "--addresses", str(addresses)], stdout=subprocess.PIPE, text=True)
        collector = None
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        try:
            assert sim.stdout is not None and sim.stdout.readline().strip() == "ready"
            env = os.environ | {
                "MONGO_URI": uri, "MONGO_DB": db_name, "HYPERLIQUID_WS_URL": f"ws://127.0.0.1:{sim_port}/ws",
                "HYPERLIQUID_INFO_URL": f"http://127.0.0.1:{sim_port}/info", "TRADER_ADDRESSES_FILE": str(addresses),
                "TRADER_WS_FEED": "openOrders", "TRADER_WS_MAX_USERS_PER_IP": str(traders),
                "TRADER_ORDERS_WS_FLUSH_INTERVAL": str(FLUSH_INTERVAL), "COLLECTOR_DATA_DIR": str(tmp / "collector"),
                "COLLECTOR_HEALTH_PORT": str(health_port), "COLLECTOR_LOG_LEVEL": "WARNING",
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
            poller = Poller(coll)
            poller.start()
            proc = psutil.Process(collector.pid)
            cpu0, t0, h0, f0 = sum(proc.cpu_times()[:2]), time.monotonic(), _health(health_port), _frames(health_port)
            time.sleep(window)
            cpu1, t1, h1, f1 = sum(proc.cpu_times()[:2]), time.monotonic(), _health(health_port), _frames(health_port)
            os.kill(sim.pid, signal.SIGUSR1)  # stop trading; pushes go on while the collector catches up
            settle = _settle(health_port, timeout=SETTLE_TIMEOUT_S)
            poller.running = False
            collector.send_signal(signal.SIGTERM)
            collector.wait(60)
            sim.send_signal(signal.SIGTERM)
            sim.wait(60)
            frames = f1 - f0
            events = sum(h1["events_written"].values()) - sum(h0["events_written"].values())
            elapsed = t1 - t0
            users = addresses.read_text().split()
            report = compare(coll, truth, users=users)
            lat = sorted(latencies(truth, poller.seen))
            section.add("traders / push interval / flush interval", f"{traders} / {push} s / {FLUSH_INTERVAL} s")
            section.add("frames/s sustained (collector)", f"{frames / elapsed:,.0f}")
            section.add("events written/s", f"{events / elapsed:,.0f}")
            section.add("collector CPU per frame", f"{(cpu1 - cpu0) / max(frames, 1) * 1e6:.0f} µs")
            section.add("collector CPU use", f"{(cpu1 - cpu0) / elapsed * 100:.0f} % of one core")
            if lat:
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                section.add("change -> document in MongoDB: median / p99",
                            f"{statistics.median(lat) * 1000:.0f} / {p99 * 1000:.0f} ms")
            section.add("settle after trading stopped (outcomes resolved, journal empty)", f"{settle:.1f} s")
            section.add("ground truth", report.summary())
            section.checks["zero_loss"] = not report.missed_visible and not report.missed_gap_only
            section.checks["zero_duplicates"] = not report.duplicates
            section.checks["final_statuses_right"] = not report.wrong_final_status
            section.checks["orders_observed"] = report.observable > 0 and frames > 0
            server = "MONGO_URI" if nx is None else "nx-27017"
            section.notes.append(f"{server}; latency poll every {POLL_S * 1000:.0f} ms "
                                 f"({len(lat)} transitions); simulator clock ticks every 0.1 s")
        finally:
            for p in (collector, sim):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
            client.drop_database(db_name)
            client.close()
            if nx is not None:
                nx.stop()
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="run the exchange simulator for benchmark 2")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--traders", type=int, required=True)
    parser.add_argument("--push-interval", type=float, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--addresses", required=True)
    asyncio.run(_serve_sim(parser.parse_args()))
