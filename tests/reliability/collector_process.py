"""The real collector as a child process (``python -m collector_service run``), configured only
by environment variables, for tests about processes: ``kill -9``, SIGTERM, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from collector_service.config import Settings
from collector_service.store import journal_folder
from exchange_sim import ExchangeSim
from tests.mongo_server import free_port

REPO = Path(__file__).resolve().parents[2]


def collector_env(**settings: object) -> dict[str, str]:
    """The environment for a collector child: the parent's, minus every collector setting it
    may carry (a developer's MONGO_URI, say), plus ``settings`` by upper-case name."""
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


class CollectorProcess:
    """Start, kill, stop and restart one collector child; all its output goes to one log file.

    The child runs in ``workdir`` so that no ``.env`` of the repository leaks into it.
    """

    def __init__(self, env: dict[str, str], workdir: Path, command: str = "run") -> None:
        self.env = env
        self.workdir = workdir
        self.command = command
        self.log_path = workdir / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def journal(self) -> Path:
        return journal_folder(Path(self.env["COLLECTOR_DATA_DIR"]), int(self.env.get("TRADER_SHARD_INDEX", "0")))

    def segments(self) -> list[Path]:
        """Journal segments on disk right now."""
        return sorted(self.journal.glob("segment-*.msgpack")) if self.journal.exists() else []

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "collector already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collector_service", self.command],
                cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """``kill -9``: no signal handler, no flush, no unsubscribe."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 40.0) -> int:
        """SIGTERM (the clean shutdown path) and the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"collector did not exit within {timeout}s of SIGTERM; log: {self.log_path}") from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    async def wait_for_log(self, text: str, *, after: int = 0, timeout: float = 30.0) -> None:
        """Wait until ``text`` appears in the log past byte offset ``after``."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text()[after:]:
            if not self.running:
                raise AssertionError(f"collector exited ({self.proc and self.proc.returncode}) before logging "
                                     f"{text!r}:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"collector did not log {text!r} within {timeout}s:\n{self.log_text()[-3000:]}")
            await asyncio.sleep(0.1)

    def get(self, path: str) -> tuple[int, str]:
        """GET a path of the health server: (status, body)."""
        url = f"http://{self.env.get('COLLECTOR_HEALTH_HOST', '127.0.0.1')}:{self.env['COLLECTOR_HEALTH_PORT']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz")[1])

    def stop_if_running(self) -> None:
        """Teardown: make sure no child outlives its test."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)


def collector_for(sim: ExchangeSim, mongo_uri: str, db_name: str, workdir: Path, users: list[str],
                  **overrides: object) -> CollectorProcess:
    """A collector child pointed at a simulator and a database, with test-speed timings."""
    settings: dict[str, object] = {
        "mongo_uri": mongo_uri, "mongo_db": db_name, "hyperliquid_ws_url": sim.ws_url,
        "hyperliquid_info_url": sim.info_url, "trader_addresses": ",".join(users), "trader_ws_clients": 2,
        "trader_orders_ws_flush_interval": 0.3, "trader_ws_ping_interval": 10,
        "collector_data_dir": workdir / "data", "collector_health_port": free_port(),
    }
    settings.update(overrides)
    return CollectorProcess(collector_env(**settings), workdir)
