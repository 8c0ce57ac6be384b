"""``python -m scripts.demo`` (``make demo``): the whole orderwatch system on embedded defaults.

Starts, each in its own process group with its output in ``<data>/logs/<name>.log``:

- ``mongo``: nx-27017, a MongoDB wire-protocol server on SQLite, data in ``<data>/mongo``;
- ``exchange_sim``: the simulated exchange with a handful of randomly trading traders, its trader
  list and ground truth in ``<data>/sim``;
- ``collector``: the collector pointed at both, its journal in ``<data>/collector``;
- ``dagster``: ``dagster dev`` with ``DAGSTER_HOME=<data>/dagster`` and Parquet in ``<data>/parquet``;
- a static web server (a thread of this process) for the daily HTML reports in ``<data>/reports``,
  which the ``daily_report`` asset links to (``ORDERWATCH_REPORT_BASE_URL``);
- the alert inbox (another thread, :mod:`scripts.demo_inbox`): receivers standing in for the
  generic webhook, Slack, Discord and Telegram, to which Dagster's alert channels post, and a
  page of what each received.

The first simulated trader is a whale (``exchange_sim --whale``, :mod:`exchange_sim.whale`):
every minute it places and fills orders above the large-change threshold, opens, adds to,
reduces and closes a BTC position, runs a large TWAP and has its position pushed towards
liquidation by the mark, so that large-change, position and near-liquidation alerts reach the
inbox within minutes. The fast alert sensor runs every ``FAST_ALERT_INTERVAL_S`` seconds.

Whom the collector follows: a manual list, ``<data>/manual_traders.txt`` (the first third of the
simulated traders, written at each start), and the selection Dagster makes from the simulator's
leaderboard (``HYPERLIQUID_LEADERBOARD_URL``) by the demo's rules, ``scripts/demo_selection.toml``,
which it writes into MongoDB ``trader_watchlist`` (``TRADER_WATCHLIST_SELECTION=true``). The first
snapshot and selection are made within a minute of the first start
(``leaderboard_first_snapshot_sensor``), then hourly.

Ctrl-C (SIGINT) or SIGTERM stops everything it started; a second run reuses ``<data>``.
Environment: ``ORDERWATCH_DEMO_DATA_DIR`` (default ``./data``), ``ORDERWATCH_DEMO_MONGO_PORT``
(27017), ``ORDERWATCH_DEMO_SIM_PORT`` (8765), ``ORDERWATCH_DEMO_HEALTH_PORT`` (9108),
``ORDERWATCH_DEMO_DAGSTER_PORT`` (3000), ``ORDERWATCH_DEMO_REPORT_PORT`` (3100), ``ORDERWATCH_DEMO_INBOX_PORT``
(3200), ``ORDERWATCH_DEMO_TRADERS`` (6).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymongo

from scripts.demo_inbox import Inbox, LogToFile, channel_env, inbox_server, serving
from scripts.supervise import Process, Spec, port_in_use, stop_all

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
MONGO_DB = "orderwatch"
READY_TIMEOUT_S = {"mongo": 30.0, "exchange_sim": 30.0, "collector": 60.0, "dagster": 180.0}
# Simulated orders per trader per minute: with 6 traders, about one new order a second.
ORDERS_PER_TRADER_PER_MIN = 10.0
SELECTION_RULES = ROOT / "scripts" / "demo_selection.toml"
MANUAL_SHARE = 3
FAST_ALERT_INTERVAL_S = 10
"""The demo's ``ORDERWATCH_FAST_ALERT_INTERVAL_S`` (default 30): alerts in the inbox sooner."""
"""One simulated trader in MANUAL_SHARE (at least one) is on the manual list; the selection may take the rest."""


class DemoError(RuntimeError):
    """The demo cannot start or keep running; the message says why and what to do."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise DemoError(f"{name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class DemoConfig:
    """Where the demo keeps its data and which loopback ports it uses."""

    data: Path
    mongo_port: int
    sim_port: int
    health_port: int
    dagster_port: int
    report_port: int
    inbox_port: int
    traders: int

    @classmethod
    def from_env(cls) -> DemoConfig:
        return cls(
            data=Path(os.environ.get("ORDERWATCH_DEMO_DATA_DIR") or ROOT / "data").resolve(),
            mongo_port=_env_int("ORDERWATCH_DEMO_MONGO_PORT", 27017),
            sim_port=_env_int("ORDERWATCH_DEMO_SIM_PORT", 8765),
            health_port=_env_int("ORDERWATCH_DEMO_HEALTH_PORT", 9108),
            dagster_port=_env_int("ORDERWATCH_DEMO_DAGSTER_PORT", 3000),
            report_port=_env_int("ORDERWATCH_DEMO_REPORT_PORT", 3100),
            inbox_port=_env_int("ORDERWATCH_DEMO_INBOX_PORT", 3200),
            traders=_env_int("ORDERWATCH_DEMO_TRADERS", 6),
        )

    def ports(self) -> dict[str, tuple[int, str]]:
        """Each port with what uses it and the variable that moves it."""
        return {
            "MongoDB (nx-27017)": (self.mongo_port, "ORDERWATCH_DEMO_MONGO_PORT"),
            "exchange simulator": (self.sim_port, "ORDERWATCH_DEMO_SIM_PORT"),
            "collector health": (self.health_port, "ORDERWATCH_DEMO_HEALTH_PORT"),
            "Dagster UI": (self.dagster_port, "ORDERWATCH_DEMO_DAGSTER_PORT"),
            "daily reports": (self.report_port, "ORDERWATCH_DEMO_REPORT_PORT"),
            "alert inbox": (self.inbox_port, "ORDERWATCH_DEMO_INBOX_PORT"),
        }

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://{HOST}:{self.mongo_port}"

    @property
    def addresses_file(self) -> Path:
        return self.data / "sim" / "trader_addresses.txt"

    @property
    def manual_file(self) -> Path:
        return self.data / "manual_traders.txt"

    @property
    def leaderboard_url(self) -> str:
        return f"http://{HOST}:{self.sim_port}/Mainnet/leaderboard"

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def reports_url(self) -> str:
        return f"http://{HOST}:{self.report_port}"

    @property
    def inbox_url(self) -> str:
        return f"http://{HOST}:{self.inbox_port}"


def check_ports(cfg: DemoConfig) -> None:
    """Refuse to start anything when a port is taken or two settings share one."""
    problems = []
    seen: dict[int, str] = {}
    for what, (port, var) in cfg.ports().items():
        if not 0 < port < 65536:
            problems.append(f"{var}={port} is not a TCP port")
        elif port in seen:
            problems.append(f"{var}={port} is also the {seen[port]} port; give each its own")
        elif port_in_use(port, HOST):
            problems.append(
                f"port {port} ({what}) is already in use on {HOST}: stop whatever listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it; an earlier demo still running?) "
                f"or pick another port with {var}=<port>"
            )
        seen.setdefault(port, what)
    if problems:
        raise DemoError("cannot start the demo:\n  " + "\n  ".join(problems))


def specs(cfg: DemoConfig, seed: int) -> list[Spec]:
    """The four services, in start order."""
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    data = cfg.data
    mongo = Spec(
        "mongo",
        [str(BIN / "nx-27017"), "--data-dir", str(data / "mongo"), "--host", HOST, "-p", str(cfg.mongo_port),
         "--pid-file", str(data / "mongo" / "nx-27017.pid"), "--log-file", str(data / "mongo" / "nx-27017.log")],
        base, data,
    )
    sim = Spec(
        "exchange_sim",
        [sys.executable, "-m", "exchange_sim", "--host", HOST, "--port", str(cfg.sim_port),
         "--traders", str(cfg.traders), "--seed", str(seed), "--whale",
         "--orders-per-trader-per-min", str(ORDERS_PER_TRADER_PER_MIN), "--push-interval", "2",
         "--addresses-file", str(cfg.addresses_file), "--truth-file", str(data / "sim" / "truth.jsonl")],
        base, data,
    )
    # Every collector setting the demo depends on is explicit, so a mainnet `.env` or shell
    # variables cannot point it elsewhere (it also runs outside the repo, where no .env is read).
    collector = Spec(
        "collector",
        [sys.executable, "-m", "collector_service", "run"],
        {**base, "MONGO_URI": cfg.mongo_uri, "MONGO_DB": MONGO_DB,
         "HYPERLIQUID_WS_URL": f"ws://{HOST}:{cfg.sim_port}/ws",
         "HYPERLIQUID_INFO_URL": f"http://{HOST}:{cfg.sim_port}/info",
         "TRADER_ADDRESSES": "", "TRADER_ADDRESSES_FILE": str(cfg.manual_file), "TRADER_WATCHLIST_SELECTION": "true",
         "TRADER_WS_SOURCE_ADDRESSES": "", "TRADER_SHARD_INDEX": "0", "TRADER_SHARD_COUNT": "1",
         "TRADER_ORDERS_WS_FLUSH_INTERVAL": "1", "COLLECTOR_DATA_DIR": str(data / "collector"),
         "COLLECTOR_HEALTH_HOST": HOST, "COLLECTOR_HEALTH_PORT": str(cfg.health_port)},
        data,
    )
    dagster = Spec(
        "dagster",
        [str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", HOST, "-p", str(cfg.dagster_port)],
        {**base, "DAGSTER_HOME": str(data / "dagster"), "ORDERWATCH_DATA_DIR": str(data),
         "MONGO_URI": cfg.mongo_uri, "MONGO_DB": MONGO_DB, "ORDERWATCH_REPORT_BASE_URL": cfg.reports_url,
         "HYPERLIQUID_LEADERBOARD_URL": cfg.leaderboard_url, "ORDERWATCH_SELECTION_RULES": str(SELECTION_RULES),
         "ORDERWATCH_FAST_ALERT_INTERVAL_S": str(FAST_ALERT_INTERVAL_S), **channel_env(cfg.inbox_url)},
        data,
        # dagster dev shuts its webserver, daemon and code servers down on SIGINT only
        stop_signal=signal.SIGINT, stop_timeout=60.0, stop_alone=True,
    )
    return [mongo, sim, collector, dagster]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # /healthz answers 503 until every connection is up: it is listening
    except OSError:
        return False


def readiness(cfg: DemoConfig) -> dict[str, Callable[[], bool]]:
    return {
        "mongo": lambda: _listening(cfg.mongo_port),
        "exchange_sim": lambda: _listening(cfg.sim_port) and cfg.addresses_file.exists(),
        "collector": lambda: _answers_http(f"http://{HOST}:{cfg.health_port}/healthz"),
        "dagster": lambda: _answers_http(f"http://{HOST}:{cfg.dagster_port}/server_info"),
    }


def wait_ready(proc: Process, ready: Callable[[], bool], stop: threading.Event) -> None:
    timeout = READY_TIMEOUT_S[proc.spec.name]
    deadline = time.monotonic() + timeout
    while not ready():
        if stop.is_set():
            return
        if proc.exit_code() is not None:
            raise DemoError(f"{proc.spec.name} exited with code {proc.exit_code()} while starting; "
                            f"last lines of {proc.log}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise DemoError(f"{proc.spec.name} was not ready within {timeout:.0f}s; "
                            f"last lines of {proc.log}:\n{proc.tail()}")
        stop.wait(0.2)


def prepare(cfg: DemoConfig) -> None:
    """Create the data folders and give Dagster its instance settings."""
    for sub in ("mongo", "sim", "collector", "dagster", "logs", "parquet", "reports", "inbox"):
        (cfg.data / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", cfg.data / "dagster" / "dagster.yaml")
    # a fresh address file is the simulator's "I am serving" signal
    cfg.addresses_file.unlink(missing_ok=True)


def write_manual_list(cfg: DemoConfig) -> int:
    """The manual watch list: the first of every MANUAL_SHARE simulated traders, labelled; how many."""
    traders = [line.split()[0] for line in cfg.addresses_file.read_text().splitlines() if line.strip()]
    manual = traders[: max(1, len(traders) // MANUAL_SHARE)]
    lines = [f"{address} manual-{i} [demo]" for i, address in enumerate(manual)]
    cfg.manual_file.write_text("# the demo's manual list, written at each start (scripts/demo.py)\n"
                               + "\n".join(lines) + "\n")
    return len(manual)


def banner(cfg: DemoConfig, procs: list[Process], seed: int, manual: int, elapsed: float) -> str:
    logs = {p.spec.name: p.log for p in procs}
    ui = f"http://{HOST}:{cfg.dagster_port}"
    rows = [
        ("Dagster UI", ui, logs["dagster"]),
        ("collector health", f"http://{HOST}:{cfg.health_port}/healthz  (and /metrics)", logs["collector"]),
        ("exchange simulator", f"ws://{HOST}:{cfg.sim_port}/ws  ({cfg.traders} traders, seed {seed})",
         logs["exchange_sim"]),
        ("MongoDB (nx-27017)", f"{cfg.mongo_uri}  database {MONGO_DB}", logs["mongo"]),
    ]
    lines = [f"orderwatch demo is up after {elapsed:.0f}s; data in {cfg.data}", ""]
    lines += [f"  {name:<19} {where}\n  {'':<19} log: {log}" for name, where, log in rows]
    lines += [
        f"  {'Parquet tables':<19} {cfg.data / 'parquet'}/<table>/date=YYYY-MM-DD/",
        f"  {'daily reports':<19} {cfg.reports_url}/date=YYYY-MM-DD/report.html  ({cfg.reports})",
        f"  {'':<19} log: {cfg.logs / 'reports.log'}",
        f"  {'alert inbox':<19} {cfg.inbox_url}/  (what the webhook, Slack, Discord and Telegram channels received)",
        f"  {'':<19} the first simulated trader is a whale: large-change, position and near-liquidation",
        f"  {'':<19} alerts arrive within a few minutes ({cfg.data / 'inbox'})",
        "",
        f"Whom it follows: {manual} simulated traders on the manual list ({cfg.manual_file}), and those",
        f"Dagster selects from the simulated leaderboard by {SELECTION_RULES.relative_to(ROOT)} (the first",
        "snapshot and selection within a minute of the first start, then hourly), in MongoDB trader_watchlist:",
        f"  {'leaderboard group':<19} {ui}/locations/orderwatch/asset-groups/leaderboard",
        f"  {'snapshot':<19} {ui}/assets/leaderboard",
        f"  {'decisions, coverage':<19} {ui}/assets/trader_selection  (metadata: list, changes, coverage)",
        f"  {'coverage in force':<19} http://{HOST}:{cfg.health_port}/healthz  (coverage)",
        "",
        f"Build today's tables: open {ui}/locations/orderwatch/asset-groups/daily,",
        "click 'Materialize all…', choose 'Latest' (today, UTC) and 'Launch 1 run'.",
        "Left alone, a schedule rebuilds today every 15 minutes.",
        f"Stop everything: Ctrl-C here (or kill -TERM {os.getpid()}).",
    ]
    return "\n".join(lines)


def first_event_at(client: pymongo.MongoClient, since: datetime) -> datetime | None:
    """When the collector saw the first order event stored since ``since`` (an indexed find_one:
    counting is slow on nx-27017)."""
    try:
        doc = client[MONGO_DB].trader_orders.find_one(
            {"observedAt": {"$gte": since}}, {"observedAt": 1}, sort=[("observedAt", 1)]
        )
    except pymongo.errors.PyMongoError:
        return None
    return None if doc is None else doc["observedAt"]


class _ReportHandler(LogToFile, SimpleHTTPRequestHandler):
    """Serves files from ``directory``; one access-log line per request to ``log``, not to the console."""


@contextmanager
def serve_pages(cfg: DemoConfig, started_at: datetime) -> Iterator[None]:
    """Serve ``<data>/reports`` and the alert inbox on loopback from threads of this process while
    the block runs."""
    reports = type("ReportHandler", (_ReportHandler,), {"log": cfg.logs / "reports.log"})
    handler = functools.partial(reports, directory=str(cfg.reports))
    inbox = Inbox(cfg.data / "inbox", started_at)
    with (serving(ThreadingHTTPServer((HOST, cfg.report_port), handler), "reports"),
          serving(inbox_server(HOST, cfg.inbox_port, inbox, cfg.logs / "inbox.log"), "inbox")):
        yield


def run(cfg: DemoConfig, started: list[Process], stop: threading.Event, say: Callable[[str], None]) -> int:
    """Start everything, report, then watch until ``stop`` is set or a service dies."""
    t0, started_at = time.monotonic(), datetime.now(UTC)
    prepare(cfg)
    with serve_pages(cfg, started_at):
        seed = time.time_ns() // 1_000_000  # new traders each run: the simulator's order ids restart at each start
        ready = readiness(cfg)
        manual = 0
        for spec in specs(cfg, seed):
            say(f"starting {spec.name} (log {cfg.logs / (spec.name + '.log')})")
            proc = Process.start(spec, cfg.logs)
            started.append(proc)
            wait_ready(proc, ready[spec.name], stop)
            if stop.is_set():
                return 0
            if spec.name == "exchange_sim":
                manual = write_manual_list(cfg)
        say(banner(cfg, started, seed, manual, time.monotonic() - t0))
        reported = False
        client: pymongo.MongoClient = pymongo.MongoClient(cfg.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=2000)
        with client:
            while not stop.wait(1.0):
                for proc in started:
                    if proc.exit_code() is not None:
                        raise DemoError(f"{proc.spec.name} stopped unexpectedly with code {proc.exit_code()}; "
                                        f"last lines of {proc.log}:\n{proc.tail()}")
                first = None if reported else first_event_at(client, started_at)
                if first is not None:
                    reported = True
                    say(f"order events are flowing into MongoDB ({MONGO_DB}.trader_orders); the first was seen "
                        f"{(first - started_at).total_seconds():.1f}s after the demo started")
        return 0


def main() -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    started: list[Process] = []
    stop = threading.Event()
    try:
        cfg = DemoConfig.from_env()
        check_ports(cfg)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        return run(cfg, started, stop, say)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if started:
            say("stopping: " + ", ".join(p.spec.name for p in reversed(started)))
            t0 = time.monotonic()
            stop_all(started, say)
            say(f"stopped every process the demo started ({time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    sys.exit(main())
