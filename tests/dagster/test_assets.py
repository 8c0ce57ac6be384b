"""Materialize the scenario's two days in-process against nx-27017 and compare every table."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster import tables
from orderwatch_dagster.assets import daily_assets
from orderwatch_dagster.checks import daily_checks
from orderwatch_dagster.resources import ParquetStore
from tests.dagster import scenario as sc


def materialize_day(day: str, resources: dict, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*daily_assets, *daily_checks],
        partition_key=day,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def rows(df: pl.DataFrame, cols: list[str]) -> list[tuple]:
    return [tuple(r) for r in df.select(cols).iter_rows()]


@pytest.fixture
def built(seeded_db: Database, resources: dict) -> dict[str, dg.ExecuteInProcessResult]:
    return {day: materialize_day(day, resources) for day in (sc.D1, sc.D2)}


def test_two_days_match_the_hand_worked_tables(built: dict, store: ParquetStore, seeded_db: Database) -> None:
    for result in built.values():
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(daily_checks)
        assert all(c.passed for c in checks), [(c.check_name, c.description) for c in checks if not c.passed]

    for table, cols in tables.TABLES.items():
        for day in (sc.D1, sc.D2):
            df = store.read(table, day)
            assert df.schema == tables.schema(cols), table
            assert store.path(table, day).name == f"{table}.parquet"

    assert store.read("order_events", sc.D1).height == 4
    ev2 = store.read("order_events", sc.D2)
    assert ev2.height == 15 + 22  # A and B: 15 (the D3 close of 202 is not in D2); C: 22
    a_b = {101, 102, 103, 104, 201, 202, 203}
    assert set(ev2["oid"]) == a_b | {300, 310, 320, 321, 322, 330, 331, 340, 350, 360, 361}
    # The extraction reads the new fields: dex (derived from the coin for an old document
    # without it), and the replacement links on both halves of a modify.
    assert dict(ev2.group_by("dex").agg(pl.col("coin").unique().sort()).iter_rows()) == {
        "": ["@107", "BTC", "DOGE", "ETH", "HYPE", "SOL"],
        "xyz": ["xyz:TSLA"],
    }
    links = ev2.filter(pl.col("replaceMatch").is_not_null()).sort("eventAt", "action")
    assert rows(links.filter(pl.col("oid").is_in([330, 331])), ["oid", "action", "replacesOid", "replacedByOid"]) == [
        (330, "closed", None, 331),
        (331, "new", 330, None),
    ]
    assert set(links["replaceMatch"]) == {"cloid", "inferred"}

    assert store.read("order_lifecycles", sc.D1).select(sc.LIFECYCLE_COLS).to_dicts() == sc.LIFECYCLES_D1
    assert store.read("order_lifecycles", sc.D2).select(sc.LIFECYCLE_COLS).to_dicts() == sc.LIFECYCLES_D2
    assert rows(store.read("large_change_alerts", sc.D1), sc.ALERT_COLS) == sc.ALERTS_D1
    assert rows(store.read("large_change_alerts", sc.D2), sc.ALERT_COLS) == sc.ALERTS_D2
    assert rows(store.read("open_orders_snapshot", sc.D1), sc.OPEN_ORDER_COLS) == sc.OPEN_ORDERS_D1
    assert rows(store.read("open_orders_snapshot", sc.D2), sc.OPEN_ORDER_COLS) == sc.OPEN_ORDERS_D2
    assert rows(store.read("positions_snapshot", sc.D1), sc.POSITION_COLS) == sc.POSITIONS_D1
    assert rows(store.read("positions_snapshot", sc.D2), sc.POSITION_COLS) == sc.POSITIONS_D2
    assert rows(store.read("trader_daily_stats", sc.D1), sc.STATS_COLS) == sc.STATS_D1
    assert rows(store.read("trader_daily_stats", sc.D2), sc.STATS_COLS) == sc.STATS_D2

    alerts = sorted(
        seeded_db[schema.ALERTS].find({}, {"_id": 0, "alertKey": 1, "reason": 1}), key=lambda d: d["alertKey"]
    )
    expected = sorted(
        [{"alertKey": a[0], "reason": a[2]} for a in sc.ALERTS_D1 + sc.ALERTS_D2], key=lambda d: d["alertKey"]
    )
    assert alerts == expected


def test_materialization_metadata_and_idempotent_rebuild(
    built: dict, resources: dict, seeded_db: Database, store: ParquetStore
) -> None:
    mats = {m.asset_key.to_user_string(): m for m in built[sc.D2].get_asset_materialization_events()}
    assert set(mats) == set(tables.TABLES)
    meta = mats["order_lifecycles"].materialization.metadata
    assert meta["dagster/row_count"].value == len(sc.LIFECYCLES_D2)
    assert "| ethAddress |" in meta["preview"].value
    assert [c.name for c in meta["dagster/column_schema"].schema.columns] == [c.name for c in tables.ORDER_LIFECYCLES]
    assert mats["large_change_alerts"].materialization.metadata["new_alerts"].value == len(sc.ALERTS_D2)

    before = {t: store.read(t, sc.D2) for t in tables.TABLES}
    again = materialize_day(sc.D2, resources)
    after_mats = {m.asset_key.to_user_string(): m for m in again.get_asset_materialization_events()}
    assert after_mats["large_change_alerts"].materialization.metadata["new_alerts"].value == 0
    assert seeded_db[schema.ALERTS].count_documents({}) == len(sc.ALERTS_D1) + len(sc.ALERTS_D2)
    for t, df in before.items():
        assert store.read(t, sc.D2).equals(df), t
    assert not list(store.path("order_events", sc.D2).parent.glob(".*tmp"))


def test_duplicates_block_downstream_assets(mongo_db: Database, resources: dict, store: ParquetStore) -> None:
    # No unique index here: the collector's guard is missing, so duplicates reach MongoDB.
    docs = sc.orders()
    dup_new = next(d for d in docs if d["oid"] == 102 and d["action"] == "new")
    dup_upd = next(d for d in docs if d["oid"] == 102 and d["eventKey"] == "updated:1")
    mongo_db[schema.ORDERS].insert_many([*docs, dict(dup_new), dict(dup_upd), dict(dup_upd)])
    mongo_db[schema.POSITIONS].insert_many(sc.positions())

    result = materialize_day(sc.D2, resources, raise_on_error=False)
    assert not result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    dedup = evals["order_events_unique_keys"]
    assert not dedup.passed
    assert dedup.metadata["parquet_duplicate_keys"].value == 2
    assert dedup.metadata["parquet_extra_rows"].value == 3
    assert dedup.metadata["mongo_duplicate_keys"].value == 2
    assert "102" in dedup.metadata["duplicate_keys"].value
    assert "2 duplicated event keys" in (dedup.description or "")

    built = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    # positions_snapshot does not depend on order_events; everything downstream of it is blocked.
    assert built <= {"order_events", "positions_snapshot"}
    assert "order_events" in built
    for table in ("order_lifecycles", "large_change_alerts", "open_orders_snapshot", "trader_daily_stats"):
        assert not store.path(table, sc.D2).exists(), table
    assert mongo_db[schema.ALERTS].count_documents({}) == 0


def test_partitions_written_before_dex_and_links_still_read(
    seeded_db: Database, resources: dict, store: ParquetStore
) -> None:
    # D1 as the previous code wrote it: no dex, no replacement links (C-300's new event is there).
    assert materialize_day(sc.D1, resources).success
    old = store.read("order_events", sc.D1).drop("dex", "replacesOid", "replacedByOid", "replaceMatch")
    store.write("order_events", sc.D1, old)
    assert materialize_day(sc.D2, resources).success
    assert store.read("order_lifecycles", sc.D2).select(sc.LIFECYCLE_COLS).to_dicts() == sc.LIFECYCLES_D2
    assert rows(store.read("trader_daily_stats", sc.D2), sc.STATS_COLS) == sc.STATS_D2
    history = store.scan_until("order_events", sc.D2).collect()
    assert history.schema == tables.schema(tables.ORDER_EVENTS)
    assert history.filter(pl.col("eventAt") < sc.at(sc.D2, "00:00:00"))["dex"].null_count() == 4
