"""The code location's wiring, the instance settings, and the dagster CLI against nx-27017."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from pymongo.database import Database

from orderwatch_dagster import tables
from orderwatch_dagster.definitions import defs
from orderwatch_dagster.partitions import daily_partitions
from orderwatch_dagster.resources import AlertChannels, MongoResource, ParquetStore, resources_from_env
from tests.dagster import scenario as sc

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def test_wiring() -> None:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {*tables.TABLES, "daily_report", "trader_watchlist"}  # a Parquet table each, the report, the list
    snapshots = {"leaderboard", "trader_selection", "trader_watchlist"}  # not partitioned: one per run
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        daily = key.to_user_string() not in snapshots
        assert node.group_name == ("daily" if daily else "leaderboard")
        assert node.partitions_def == (daily_partitions if daily else None)
    assert graph.get(dg.AssetKey("trader_selection")).parent_keys == {dg.AssetKey("leaderboard")}
    assert graph.get(dg.AssetKey("trader_watchlist")).parent_keys == {dg.AssetKey("trader_selection")}
    assert graph.get(dg.AssetKey("order_lifecycles")).parent_keys == {
        dg.AssetKey("order_events"),
        dg.AssetKey("fills"),
    }
    assert graph.get(dg.AssetKey("trader_daily_stats")).parent_keys == {
        dg.AssetKey("order_events"),
        dg.AssetKey("order_lifecycles"),
        dg.AssetKey("fills"),
    }
    assert graph.get(dg.AssetKey("positions_snapshot")).parent_keys == set()
    assert graph.get(dg.AssetKey("daily_report")).parent_keys == {
        dg.AssetKey(t)
        for t in ("order_events", "fills", "order_lifecycles", "large_change_alerts", "trader_daily_stats",
                  "positions_snapshot", "trader_scorecards")
    }
    assert graph.get(dg.AssetKey("fills")).parent_keys == set()

    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == {
        ("order_events", "order_events_unique_keys"),
        ("order_events", "order_events_row_count_matches_mongo"),
        ("order_events", "closed_orders_have_new_event"),
        ("order_lifecycles", "order_lifecycles_one_row_per_order"),
        ("order_lifecycles", "order_lifecycles_closed_after_first_seen"),
        ("fills", "fills_unique_keys"),
        ("fills", "fills_row_count_matches_mongo"),
        ("fills", "fills_orders_seen_in_events"),
        ("order_lifecycles", "order_lifecycles_filled_sz_matches_fills"),
        ("order_lifecycles", "order_lifecycles_fills_agree_with_events"),
        ("trader_scorecards", "trader_scorecards_agree_with_leaderboard"),
        ("leaderboard", "leaderboard_one_row_per_address"),
        ("leaderboard", "leaderboard_not_much_smaller"),
        ("trader_selection", "trader_selection_fresh_enough"),
    }
    blocking = {k.name for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert blocking == {"order_events_unique_keys", "fills_unique_keys", "leaderboard_one_row_per_address"}

    job = defs.resolve_job_def("daily_tables_job")
    assert job.partitions_def == daily_partitions
    assert {s.name for s in repo.schedule_defs} == {
        "nightly_previous_day_schedule",
        "intraday_refresh_schedule",
        "leaderboard_schedule",
    }
    assert defs.resolve_job_def("leaderboard_job").partitions_def is None
    assert {s.name for s in repo.sensor_defs} == {
        "late_events_sensor",
        "fast_alert_sensor",
        "leaderboard_first_snapshot_sensor",
    }
    assert set(repo.get_top_level_resources()) == {"mongo_db", "store", "leaderboard_source", "alert_channels"}
    # Today is a partition (the intraday refresh builds it); tomorrow is not.
    with dg.partition_loading_context(effective_dt=sc.at(sc.D2, "08:00:00")):
        assert daily_partitions.get_last_partition_key() == sc.D2


CHANNEL_VARS = (
    "ORDERWATCH_ALERT_WEBHOOK_URL",
    "ORDERWATCH_SLACK_WEBHOOK_URL",
    "ORDERWATCH_DISCORD_WEBHOOK_URL",
    "ORDERWATCH_TELEGRAM_BOT_TOKEN",
    "ORDERWATCH_TELEGRAM_CHAT_ID",
    "ORDERWATCH_TELEGRAM_API_URL",
)


def test_resources_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = ("MONGO_URI", "MONGO_DB", "ORDERWATCH_DATA_DIR", "ORDERWATCH_PARQUET_URL", "HYPERLIQUID_LEADERBOARD_URL")
    for name in (*env, *CHANNEL_VARS):
        monkeypatch.delenv(name, raising=False)
    defaults = resources_from_env()
    assert defaults["mongo_db"] == MongoResource(uri="mongodb://127.0.0.1:27017", database="orderwatch")
    assert defaults["store"] == ParquetStore(data_dir="./data")
    assert defaults["alert_channels"] == AlertChannels()
    assert defaults["leaderboard_source"].url == "https://stats-data.hyperliquid.xyz/Mainnet/leaderboard"
    assert defaults["alert_channels"].channels() == []
    monkeypatch.setenv("MONGO_URI", "mongodb://db.example:27017")
    monkeypatch.setenv("ORDERWATCH_DATA_DIR", "/srv/ow")
    monkeypatch.setenv("HYPERLIQUID_LEADERBOARD_URL", "http://127.0.0.1:8765/Mainnet/leaderboard")
    configured = resources_from_env()
    assert configured["leaderboard_source"].url == dg.EnvVar("HYPERLIQUID_LEADERBOARD_URL")
    assert configured["mongo_db"].uri == dg.EnvVar("MONGO_URI")
    assert configured["store"].data_dir == dg.EnvVar("ORDERWATCH_DATA_DIR")
    assert configured["store"].parquet_url == ""
    assert ParquetStore(data_dir="/srv/ow").path("fills", sc.D1) == f"/srv/ow/parquet/fills/date={sc.D1}/fills.parquet"
    assert ParquetStore(data_dir="/srv/ow").report_path(sc.D1) == f"/srv/ow/reports/date={sc.D1}/report.html"
    monkeypatch.setenv("ORDERWATCH_PARQUET_URL", "s3://lake/orderwatch/parquet")
    assert resources_from_env()["store"].parquet_url == dg.EnvVar("ORDERWATCH_PARQUET_URL")
    on_s3 = ParquetStore(parquet_url="s3://lake/orderwatch/parquet")
    assert on_s3.path("fills", sc.D1) == f"s3://lake/orderwatch/parquet/fills/date={sc.D1}/fills.parquet"
    with pytest.raises(ValueError, match="name a folder inside the bucket"):
        ParquetStore(parquet_url="s3://lake").report_path(sc.D1)
    assert configured["mongo_db"].database == "orderwatch"
    # Secrets reach the resources only as EnvVar (the UI shows the variable's name, not its value).
    for name in CHANNEL_VARS:
        monkeypatch.setenv(name, "http://127.0.0.1:9/secret-value")
    channels = resources_from_env()["alert_channels"]
    assert channels.slack_webhook_url == dg.EnvVar("ORDERWATCH_SLACK_WEBHOOK_URL")
    assert channels.telegram_bot_token == dg.EnvVar("ORDERWATCH_TELEGRAM_BOT_TOKEN")
    assert "secret-value" not in repr(channels)


def test_dagster_yaml_loads_from_any_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
        assert "SqliteRunStorage" in type(instance.run_storage).__name__
    finally:
        instance.dispose()
    assert (tmp_path / "history" / "runs.db").is_file()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "ORDERWATCH_"))}
    env.update(DAGSTER_HOME=str(home), PYTHONPATH=str(ROOT), **extra)
    return env


def test_definitions_validate(tmp_path: Path) -> None:
    proc = subprocess.run(
        [DAGSTER, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_cli_materializes_a_day(
    seeded_db: Database, mongo_uri: str, mongo_db_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    env = _env(tmp_path, MONGO_URI=mongo_uri, MONGO_DB=mongo_db_name, ORDERWATCH_DATA_DIR=str(data))
    proc = subprocess.run(
        [
            DAGSTER,
            "asset",
            "materialize",
            "-m",
            "orderwatch_dagster.definitions",
            "--select",
            "group:daily",
            "--partition",
            sc.D1,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    store = ParquetStore(data_dir=str(data))
    for table in tables.DAILY_TABLES:
        assert store.exists(table, sc.D1), table
    assert store.read("order_lifecycles", sc.D1).select(sc.LIFECYCLE_COLS).to_dicts() == sc.LIFECYCLES_D1
    whole = pl.scan_parquet(
        str(data / "parquet" / "order_events" / "**" / "*.parquet"), hive_partitioning=True
    ).collect()
    assert whole.height == 4 and whole["date"].cast(pl.String).unique().to_list() == [sc.D1]  # A: 3, C-300: 1

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        evals = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [k for k in defs.get_repository_def().asset_graph.asset_check_keys]
        )
        assert len(evals) == 11  # the daily group's checks
        assert all(e.status.value == "SUCCEEDED" for e in evals.values()), evals
    finally:
        instance.dispose()
