"""Dagster on PostgreSQL, run as production runs it: the project's dagster.yaml with ``DAGSTER_PG_URL``
set, a real PostgreSQL server, ``dagster-daemon run`` evaluating the sensors and schedules, and a run
of the daily job (its ``order_events`` step, to keep the test short) submitted to the queue, as the
UI's "Materialize" does, that the daemon launches.
The run, its materializations and the daemon's state are then read back through a DagsterInstance on
the same storage, and straight from PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.scheduler.instigation import InstigatorType
from dagster_postgres import PostgresRunStorage
from pymongo.database import Database

from orderwatch_dagster.resources import ParquetStore
from tests.dagster import scenario as sc
from tests.postgres_server import PgServer

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAEMONS = {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dagster_env(tmp_path: Path, pg_url: str, **extra: str) -> dict[str, str]:
    """A DAGSTER_HOME holding the project's dagster.yaml, and the environment production sets."""
    home = tmp_path / "dagster"
    home.mkdir(exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": pg_url,
            "ORDERWATCH_DATA_DIR": str(tmp_path / "data"), **extra}


def wait_for(check: Callable[[], object], what: str, timeout: float = 180.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.5)


@pytest.mark.slow
def test_the_daemon_runs_sensors_and_a_materialization_on_postgres(
    seeded_db: Database, mongo_uri: str, postgres: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_url = postgres.create_database(f"dagster_{uuid.uuid4().hex[:8]}")
    env = dagster_env(tmp_path, pg_url, MONGO_URI=mongo_uri, MONGO_DB=seeded_db.name,
                      ORDERWATCH_FAST_ALERT_INTERVAL_S="2")
    home = Path(env["DAGSTER_HOME"])
    for name in ("DAGSTER_HOME", "DAGSTER_PG_URL"):
        monkeypatch.setenv(name, env[name])
    with (tmp_path / "daemon.log").open("wb") as log:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    run_id = str(uuid.uuid4())
    try:
        launch = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", str(REPO / "workspace.yaml"), "-j", "daily_tables_job",
             "-o", "order_events", "--run-id", run_id, "--tags", json.dumps({"dagster/partition": sc.D1})],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
        )
        assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-3000:]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)

            def finished() -> dg.DagsterRun | None:
                run = instance.get_run_by_id(run_id)
                return run if run is not None and run.is_finished else None

            run = wait_for(finished, "finished run (see daemon.log)")
            assert isinstance(run, dg.DagsterRun)
            assert run.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
            assert run.job_name == "daily_tables_job" and run.tags["dagster/partition"] == sc.D1

            def fast_sensor_ticked() -> bool:
                states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
                fast = [s for s in states if s.instigator_name == "fast_alert_sensor"]
                return bool(fast) and bool(instance.get_ticks(fast[0].instigator_origin_id, fast[0].selector_id))

            wait_for(fast_sensor_ticked, "tick of fast_alert_sensor")
            wait_for(lambda: set(instance.get_daemon_heartbeats()) >= DAEMONS, "heartbeat of every daemon")
            record = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("order_events"), asset_partitions=[sc.D1]), limit=1
            ).records
            assert record and record[0].run_id == run_id
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(60)

    store = ParquetStore(data_dir=env["ORDERWATCH_DATA_DIR"])
    assert store.read("order_events", sc.D1).height == 4
    # The history is in PostgreSQL, not in SQLite files under DAGSTER_HOME.
    assert not list(home.glob("**/*.db"))
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchall() == [("SUCCESS",)]
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        assert cur.fetchone() == (1,)


def test_a_wrong_url_stops_the_daemon_with_a_clear_error(postgres: PgServer, tmp_path: Path) -> None:
    wrong = postgres.url(password="not-the-password")
    env = dagster_env(tmp_path, wrong)
    proc = subprocess.run([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    shown = f"DAGSTER_PG_URL=postgresql://orderwatch:***@127.0.0.1:{postgres.port}/postgres"
    assert f"{shown}: cannot use this PostgreSQL for Dagster's storage" in out, out[-3000:]
    assert 'password authentication failed for user "orderwatch"' in out
    assert "not-the-password" not in out
