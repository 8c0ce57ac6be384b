"""Fast alerts end to end: simulator -> collector -> nx-27017 -> ``dagster-daemon`` running
``fast_alert_sensor`` -> one loopback server posing as Slack, Discord, Telegram and the generic
webhook.

A large order placed on the simulator reaches all four channels within the stated bound (the
sensor interval plus a few seconds: the collector's flush and one tick). The daemon (with its code
server) is then killed with SIGKILL while a second large order is pending, and started again: the
second alert arrives, and every alert reaches every channel exactly once. A small order raises
nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from exchange_sim import ExchangeSim, SimConfig
from tests.alert_receivers import DISCORD_PATH, SLACK_PATH, TOKEN, WEBHOOK_PATH, FakeReceivers
from tests.collector.harness import RunningCollector, collector_settings, eventually

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INTERVAL_S = 5
"""The sensor interval in this test (``ORDERWATCH_FAST_ALERT_INTERVAL_S``; 30 s by default)."""
BOUND_S = INTERVAL_S + 10
"""Placement -> message on every channel: one interval, the flush, one tick, a busy machine."""
CHANNELS = ("webhook", "slack", "discord", "telegram")


class Daemon:
    """``dagster-daemon run`` on the repository's workspace, in its own process group."""

    def __init__(self, home: Path, env: dict[str, str], log: Path) -> None:
        self.home, self.env, self.log = home, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the daemon and everything it started (the code server evaluating the sensor)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def cursor(self) -> str | None:
        """The fast alert sensor's cursor as the daemon stored it (None before its first tick).

        Read from the instance's SQLite schedule storage directly: a DagsterInstance opened in
        this process would leave Dagster's process-wide state pointing at it after it closes."""
        path = self.home / "schedules" / "schedules.db"
        if not path.exists():
            return None
        with closing(sqlite3.connect(path)) as db:
            try:
                bodies = [row[0] for row in db.execute("SELECT instigator_body FROM instigators")]
            except sqlite3.OperationalError:  # the daemon has not created the table yet
                return None
        for body in map(json.loads, bodies):  # InstigatorState, as serialized (legacy field names)
            if body["origin"]["job_name"] == "fast_alert_sensor":
                return (body.get("job_specific_data") or {}).get("cursor")
        return None


def daemon_for(tmp_path: Path, mongo_uri: str, db: str, env: dict[str, str]) -> Daemon:
    """A daemon with its own ``DAGSTER_HOME`` under ``tmp_path``, on MongoDB ``db``, with ``env`` added."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    base = {**os.environ, "DAGSTER_HOME": str(home), "MONGO_URI": mongo_uri, "MONGO_DB": db,
            "ORDERWATCH_DATA_DIR": str(tmp_path / "data")}
    return Daemon(home, {**base, **env}, tmp_path / "daemon.log")


@pytest.fixture
def receivers() -> Iterator[FakeReceivers]:
    r = FakeReceivers()
    yield r
    r.close()


def alert_keys(receivers: FakeReceivers) -> list[str]:
    return [a["alertKey"] for body in receivers.got("webhook") for a in body["alerts"]]


@pytest.mark.slow
async def test_a_large_order_reaches_every_channel_once_across_a_killed_daemon(
    tmp_path: Path, mongo_uri: str, mongo_db, receivers: FakeReceivers
) -> None:
    def all_notified() -> bool:
        return all(a.get("notifiedAt") for a in mongo_db.order_alerts.find())

    daemon = daemon_for(tmp_path, mongo_uri, mongo_db.name, {
        "ORDERWATCH_FAST_ALERT_INTERVAL_S": str(INTERVAL_S),
        "ORDERWATCH_ALERT_WEBHOOK_URL": receivers.base + WEBHOOK_PATH,
        "ORDERWATCH_SLACK_WEBHOOK_URL": receivers.base + SLACK_PATH,
        "ORDERWATCH_DISCORD_WEBHOOK_URL": receivers.base + DISCORD_PATH,
        "ORDERWATCH_TELEGRAM_BOT_TOKEN": TOKEN,
        "ORDERWATCH_TELEGRAM_CHAT_ID": "-100777",
        "ORDERWATCH_TELEGRAM_API_URL": receivers.base + "/telegram",
    })
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.3)) as sim:
        whale = sim.addresses[0]
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "collector", [whale])
        async with RunningCollector(settings):
            daemon.start()
            try:
                await eventually(daemon.cursor, timeout=120, what="the fast alert sensor's first tick")

                placed = time.time()
                big = sim.place(whale, "BTC", "B", "3", "60000")  # 180k USD: large_order
                await eventually(lambda: all(receivers.got(c) for c in CHANNELS), timeout=BOUND_S + 20,
                                 what="the large order's message on every channel")
                delay = max(r.at for r in receivers.requests) - placed
                print(f"large order -> message on all 4 channels: {delay:.1f} s (interval {INTERVAL_S} s)")
                assert delay <= BOUND_S, f"{delay:.1f} s > bound {BOUND_S} s"
                assert any(f":{big}:" in key for key in alert_keys(receivers))
                # the tick that sent it records sentAt and notifiedAt after its last POST: a kill
                # before that leaves the message claimed until its lease ends (the one repeat the
                # outbox allows: outbox.LEASE), so the kill below waits for them (a run beside two
                # busy loops killed in between, and the restart could not notify for 5 minutes)
                await eventually(all_notified, timeout=120, what="notifiedAt on the first alert")

                # a second large order while the daemon is dead; a small one that is no alert
                sim.place(whale, "ETH", "B", "20", "4000")  # 80k USD: below the 100k threshold
                daemon.kill()
                bigger = sim.place(whale, "BTC", "A", "2", "90000")  # 180k USD
                await eventually(lambda: mongo_db.trader_orders.find_one({"oid": bigger}), what="the order stored")
                await asyncio.sleep(INTERVAL_S)
                assert len(receivers.got("webhook")) == 1  # nothing is sent while the daemon is down
                daemon.start()
                await eventually(lambda: all(len(receivers.got(c)) >= 2 for c in CHANNELS), timeout=120,
                                 what="the second large order's message on every channel after the restart")
                # likewise before the daemon is killed again: wait for notifiedAt, not for a time a
                # busy machine can outrun
                await eventually(all_notified, timeout=120, what="notifiedAt on every alert")
                await asyncio.sleep(2 * INTERVAL_S)  # further ticks send nothing more
            finally:
                daemon.kill()
    for channel in CHANNELS:
        assert len(receivers.got(channel)) == 2, channel
    keys = alert_keys(receivers)
    assert len(keys) == len(set(keys)) == 2 and any(f":{bigger}:" in k for k in keys)
    stored = list(mongo_db.order_alerts.find({}, {"_id": 0, "alertKey": 1, "notifiedAt": 1}))
    assert sorted(a["alertKey"] for a in stored) == sorted(keys)
    assert all(a.get("notifiedAt") is not None for a in stored)
