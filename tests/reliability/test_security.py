"""Security basics: MongoDB credentials never leak (logs, check-config, /healthz, /metrics,
errors); the health endpoint binds loopback by default; nothing from the network becomes code
or a file path."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from pathlib import Path

from collector_service import journal, store
from exchange_sim import ExchangeSim, SimConfig
from tests.mongo_server import free_port
from tests.reliability.collector_process import REPO, collector_env, collector_for

SECRET = "s3cretPassw0rd"


async def test_credentials_never_leak_and_health_binds_loopback(tmp_path: Path) -> None:
    uri = f"mongodb://watcher:{SECRET}@127.0.0.1:{free_port()}/?authSource=admin"  # nothing listens there
    async with ExchangeSim(SimConfig(traders=2, orders_per_trader_per_min=60, push_interval=0.5)) as sim:
        collector = collector_for(sim, uri, "orderwatch", tmp_path, sim.addresses)
        try:
            collector.start()
            await collector.wait_for_log("event=mongo_unavailable", timeout=30)
            health = collector.health()
            metrics = collector.get("/metrics")[1]
            port = int(collector.env["COLLECTOR_HEALTH_PORT"])
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.2", port)) != 0, "health endpoint must bind 127.0.0.1 only"
            assert await asyncio.to_thread(collector.terminate) == 0
        finally:
            collector.stop_if_running()
    log = collector.log_text()
    assert "event=mongo_unavailable" in log
    assert health["mongo"].startswith("mongodb://watcher:***@")
    assert f"event=health_listening url=http://127.0.0.1:{port}/healthz" in log
    for where, text in (("log", log), ("/healthz", str(health)), ("/metrics", metrics)):
        assert SECRET not in text, f"MONGO_URI password leaked in {where}"

    shown = subprocess.run([sys.executable, "-m", "collector_service", "check-config"], cwd=tmp_path, text=True,
                           capture_output=True, timeout=60,
                           env=collector_env(mongo_uri=uri, trader_addresses=sim.addresses[0]))
    assert shown.returncode == 0 and "watcher:***@" in shown.stdout
    assert SECRET not in shown.stdout + shown.stderr
    bad = subprocess.run([sys.executable, "-m", "collector_service", "check-config"], cwd=tmp_path, text=True,
                         capture_output=True, timeout=60,
                         env=collector_env(mongo_uri=uri.replace("mongodb://", "http://"), trader_addresses="x"))
    assert bad.returncode == 2 and "MONGO_URI" in bad.stderr and SECRET not in bad.stdout + bad.stderr


def test_journal_file_names_are_ours(tmp_path: Path) -> None:
    folder = store.journal_folder(tmp_path, 3)
    j = journal.Journal(folder)
    j.append([{"kind": "order", "doc": {"ethAddress": "../../etc/passwd", "oid": 1}}])
    j.close()
    assert folder == tmp_path / "journal-shard3"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["segment-0000000001.msgpack"]


def test_no_network_input_is_evaluated() -> None:
    source = "\n".join(p.read_text() for p in (REPO / "collector_service").glob("*.py"))
    for risky in (r"\beval\(", r"\bexec\(", r"\bpickle\b", r"yaml\.load\(", r"shell=True", r"os\.system\("):
        assert not re.search(risky, source), f"collector_service uses {risky}"


def test_secret_masked_in_error_text() -> None:
    uri = f"mongodb://watcher:{SECRET}@127.0.0.1:1"
    text = store.describe_error(RuntimeError(f"cannot reach {uri}"), uri)
    assert SECRET not in text and "watcher:***@" in text
