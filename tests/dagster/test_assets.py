"""Materialize the scenario's two days in-process against nx-27017 and compare every table."""

from __future__ import annotations

from pathlib import Path

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

    for table, cols in tables.DAILY_TABLES.items():
        for day in (sc.D1, sc.D2):
            df = store.read(table, day)
            assert df.schema == tables.schema(cols), table
            assert Path(store.path(table, day)).name == f"{table}.parquet"

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
    # The watch list's labels and tags (trader_watchlist in MongoDB) in the three tables and the alerts.
    for table in ("order_lifecycles", "large_change_alerts", "trader_daily_stats"):
        for day in (sc.D1, sc.D2):
            df = store.read(table, day)
            assert {a: (lb, tg) for a, lb, tg in df.select("ethAddress", "label", "tags").iter_rows()} == {
                a: sc.LABELS[a] for a in df["ethAddress"]
            }, (table, day)
    stored = seeded_db[schema.ALERTS].find_one({"alertKey": f"{sc.A}:102:updated:2"})
    assert stored["label"] == "Whale A" and stored["tags"] == ["whales", "btc"]
    assert stored["message"].startswith(f"{sc.A} (Whale A) A ETH oid 102 updated")
    assert rows(store.read("open_orders_snapshot", sc.D1), sc.OPEN_ORDER_COLS) == sc.OPEN_ORDERS_D1
    assert rows(store.read("open_orders_snapshot", sc.D2), sc.OPEN_ORDER_COLS) == sc.OPEN_ORDERS_D2
    assert rows(store.read("positions_snapshot", sc.D1), sc.POSITION_COLS) == sc.POSITIONS_D1
    assert rows(store.read("positions_snapshot", sc.D2), sc.POSITION_COLS) == sc.POSITIONS_D2
    assert rows(store.read("trader_daily_stats", sc.D1), sc.STATS_COLS) == sc.STATS_D1
    assert rows(store.read("trader_daily_stats", sc.D2), sc.STATS_COLS) == sc.STATS_D2
    assert rows(store.read("fills", sc.D1), sc.FILL_COLS) == sc.FILLS_D1
    assert rows(store.read("fills", sc.D2), sc.FILL_COLS) == sc.FILLS_D2  # B-202's D3 fill is not there
    fill_202 = store.read("fills", sc.D2).filter(pl.col("oid") == 202).row(0, named=True)
    assert (fill_202["dir"], fill_202["source"], fill_202["startPosition"], fill_202["hash"]) == (
        "Open Long",
        "ws",
        0,
        f"0x{2021:064x}",
    )
    assert fill_202["observedAt"] == sc.at(sc.D2, "13:05:01") and fill_202["createdAt"] == sc.at(sc.D2, "13:05:02")

    # The taker IOCs that never rested (A-190 on D1, C-370 on D2) are counted, not failed.
    for day, (addr, oid) in ((sc.D1, (sc.A, 190)), (sc.D2, (sc.C, 370))):
        seen = next(
            c for c in built[day].get_asset_check_evaluations() if c.check_name == "fills_orders_seen_in_events"
        )
        assert seen.passed
        assert (seen.metadata["never_seen_orders"].value, seen.metadata["never_seen_fills"].value) == (1, 1)
        assert seen.metadata["never_seen_taker_only_orders"].value == 1
        assert f"'oid': {oid}" in seen.metadata["examples"].value and addr in seen.metadata["examples"].value

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
    assert set(mats) == {*tables.DAILY_TABLES, "daily_report"}
    meta = mats["order_lifecycles"].materialization.metadata
    assert meta["dagster/row_count"].value == len(sc.LIFECYCLES_D2)
    assert "| ethAddress |" in meta["preview"].value
    assert [c.name for c in meta["dagster/column_schema"].schema.columns] == [c.name for c in tables.ORDER_LIFECYCLES]
    assert mats["large_change_alerts"].materialization.metadata["new_alerts"].value == len(sc.ALERTS_D2)

    before = {t: store.read(t, sc.D2) for t in tables.DAILY_TABLES}
    again = materialize_day(sc.D2, resources)
    after_mats = {m.asset_key.to_user_string(): m for m in again.get_asset_materialization_events()}
    assert after_mats["large_change_alerts"].materialization.metadata["new_alerts"].value == 0
    assert seeded_db[schema.ALERTS].count_documents({}) == len(sc.ALERTS_D1) + len(sc.ALERTS_D2)
    for t, df in before.items():
        assert store.read(t, sc.D2).equals(df), t
    assert not list(Path(store.path("order_events", sc.D2)).parent.glob(".*tmp"))


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
    # positions_snapshot, fills, trader_account_days and twaps do not depend on order_events;
    # everything downstream of it is blocked.
    assert built <= {"order_events", "positions_snapshot", "fills", "trader_account_days", "twaps"}
    assert "order_events" in built
    for table in (
        "order_lifecycles",
        "large_change_alerts",
        "open_orders_snapshot",
        "trader_daily_stats",
        "trader_scorecards",
    ):
        assert not store.exists(table, sc.D2), table
    assert mongo_db[schema.ALERTS].count_documents({}) == 0


def test_a_duplicated_fill_blocks_the_tables_built_on_fills(
    mongo_db: Database, resources: dict, store: ParquetStore
) -> None:
    # No unique index: a fill stored twice reaches MongoDB.
    mongo_db[schema.ORDERS].insert_many(sc.orders())
    mongo_db[schema.POSITIONS].insert_many(sc.positions())
    docs = sc.fills()
    dup = next(d for d in docs if d["tid"] == 3221)
    mongo_db[schema.FILLS].insert_many([*docs, dict(dup)])

    result = materialize_day(sc.D2, resources, raise_on_error=False)
    assert not result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    dedup = evals["fills_unique_keys"]
    assert not dedup.passed
    assert (dedup.metadata["parquet_duplicate_keys"].value, dedup.metadata["parquet_extra_rows"].value) == (1, 1)
    assert dedup.metadata["mongo_duplicate_keys"].value == 1
    assert "'tid': 3221" in dedup.metadata["duplicate_keys"].value
    assert "1 duplicated fill keys" in (dedup.description or "")
    assert evals["order_events_unique_keys"].passed

    built = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    # Tables that do not read fills are built; those that do are not.
    assert built == {
        "order_events",
        "fills",
        "large_change_alerts",
        "open_orders_snapshot",
        "positions_snapshot",
        "trader_account_days",
    }
    for table in ("order_lifecycles", "trader_daily_stats", "trader_scorecards"):
        assert not store.exists(table, sc.D2), table


def test_fills_the_events_do_not_explain_warn_without_blocking(
    seeded_db: Database, resources: dict, store: ParquetStore
) -> None:
    # C-380 filled as maker but no snapshot ever showed it; A-102 (canceled, nothing filled by
    # its events) has a fill: both are warnings, the run goes on.
    extra = [
        sc.fill(sc.C, 380, 3801, sc.at(sc.D2, "15:00:00"), coin="SOL", side="A", px="201.0", sz="1.0", crossed=False,
                fee="0.03"),
        sc.fill(sc.A, 102, 1021, sc.at(sc.D2, "10:20:00"), coin="ETH", side="A", px="3100.0", sz="2.0", crossed=False,
                fee="0.93"),
    ]  # fmt: skip
    seeded_db[schema.FILLS].insert_many(extra)
    assert materialize_day(sc.D1, resources).success
    result = materialize_day(sc.D2, resources)
    assert result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    seen = evals["fills_orders_seen_in_events"]
    assert not seen.passed and seen.severity == dg.AssetCheckSeverity.WARN
    assert seen.metadata["never_seen_orders"].value == 2  # C-370 (taker only) and C-380
    assert seen.metadata["never_seen_with_maker_fills"].value == 1
    assert "'oid': 380" in seen.metadata["examples"].value
    agree = evals["order_lifecycles_fills_agree_with_events"]
    assert not agree.passed and agree.severity == dg.AssetCheckSeverity.WARN
    assert agree.metadata["disagreeing_orders"].value == 1 and "'rootOid': 102" in agree.metadata["orders"].value
    assert evals["order_lifecycles_filled_sz_matches_fills"].passed  # filledSz is the fills' sum all the same
    lc = store.read("order_lifecycles", sc.D2)
    assert rows(lc.filter(pl.col("oid").is_in([102, 380])), ["oid", "filledSz", "filledSzEvents", "seenInEvents"]) == [
        (102, 2, 0, True),
        (380, 1, None, False),
    ]


def test_partitions_written_before_dex_and_links_still_read(
    seeded_db: Database, resources: dict, store: ParquetStore
) -> None:
    # D1 as older code wrote it: no dex, no replacement links (C-300's new event is there), no book
    # context (A-101's new event had one), and no fills table at all.
    assert materialize_day(sc.D1, resources).success
    old = store.read("order_events", sc.D1).drop("dex", "replacesOid", "replacedByOid", "replaceMatch", *sc.NO_BOOK)
    store.write("order_events", sc.D1, old)
    Path(store.path("fills", sc.D1)).unlink()
    assert materialize_day(sc.D2, resources).success
    # A-101 was placed on D1: its book context reads as null now; nothing else changes.
    expected = [r | sc.NO_BOOK if r["oid"] == 101 else r for r in sc.LIFECYCLES_D2]
    assert store.read("order_lifecycles", sc.D2).select(sc.LIFECYCLE_COLS).to_dicts() == expected
    assert rows(store.read("trader_daily_stats", sc.D2), sc.STATS_COLS) == sc.STATS_D2
    history = store.scan_until("order_events", sc.D2).collect()
    assert history.schema == tables.schema(tables.ORDER_EVENTS)
    assert history.filter(pl.col("eventAt") < sc.at(sc.D2, "00:00:00"))["dex"].null_count() == 4


def test_large_vs_book_alerts_are_opt_in_in_the_rules_file(
    seeded_db: Database, resources: dict, store: ParquetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[thresholds]\nmin_change_vs_book_1pct = 0.5\n")
    monkeypatch.setenv("ORDERWATCH_ALERT_RULES", str(rules))
    by_name = {a.key.to_user_string(): a for a in daily_assets}
    result = dg.materialize(
        [by_name["order_events"], by_name["large_change_alerts"]],
        partition_key=sc.D2,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    alerts = store.read("large_change_alerts", sc.D2)
    assert rows(alerts.filter(pl.col("reason").str.contains("large_vs_book")), ["alertKey", "changeVsBook1pct"]) == [
        (f"{sc.A}:102:updated:2", 0.6),
        (f"{sc.B}:203:new", 0.625),
    ]
    stored = seeded_db[schema.ALERTS].find_one({"alertKey": f"{sc.B}:203:new"}, {"_id": 0})
    assert (stored["reason"], stored["changeVsBook1pct"]) == ("large_vs_book", 0.625)
