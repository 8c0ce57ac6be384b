"""The pure transforms against the hand-worked scenario, without MongoDB or Dagster."""

from __future__ import annotations

import polars as pl
import pytest

from orderwatch_dagster import tables, transforms
from tests.dagster import scenario as sc


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    raw = pl.from_dicts(sc.orders(), schema=transforms.RAW_ORDER_SCHEMA, strict=False)
    return transforms.normalize_order_events(raw)


def rows(df: pl.DataFrame, cols: list[str]) -> list[tuple]:
    return [tuple(r) for r in df.select(cols).iter_rows()]


def test_normalize_types_and_falls_back_to_created_at(events: pl.DataFrame) -> None:
    assert events.schema == tables.schema(tables.ORDER_EVENTS)
    upd = events.filter((pl.col("oid") == 202) & (pl.col("action") == "updated"))
    assert upd["eventAt"].item() == sc.at(sc.D2, "13:10:00")
    assert events["eventAt"].is_sorted()


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.LIFECYCLES_D1), (sc.D2, sc.LIFECYCLES_D2)])
def test_order_lifecycles(events: pl.DataFrame, day: str, expected: list[dict]) -> None:
    df = transforms.order_lifecycles(events.lazy(), day)
    assert df.schema == tables.schema(tables.ORDER_LIFECYCLES)
    assert df.select(sc.LIFECYCLE_COLS).to_dicts() == expected


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.ALERTS_D1), (sc.D2, sc.ALERTS_D2)])
def test_large_change_alerts(events: pl.DataFrame, day: str, expected: list[tuple]) -> None:
    df = transforms.large_change_alerts(events, day)
    assert rows(df, sc.ALERT_COLS) == expected
    assert df["alertKey"].is_unique().all()
    assert df.schema == tables.schema(tables.LARGE_CHANGE_ALERTS)


def test_alert_thresholds_are_parameters(events: pl.DataFrame) -> None:
    strict = transforms.large_change_alerts(events, sc.D2, transforms.AlertThresholds(threshold_usd=125_000))
    assert rows(strict, ["alertKey", "reason"]) == [
        (f"{sc.A}:103:new", "large_order"),
        (f"{sc.A}:103:closed", "large_close"),
        (f"{sc.A}:102:updated:2", "large_change"),
    ]
    loose = transforms.large_change_alerts(
        events, sc.D2, transforms.AlertThresholds(min_change_share=0.2, min_change_usd=20_000)
    )
    assert f"{sc.A}:101:updated:1" in loose["alertKey"].to_list()  # 120k -> 90k: 25% and 30k


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.OPEN_ORDERS_D1), (sc.D2, sc.OPEN_ORDERS_D2)])
def test_open_orders_snapshot(events: pl.DataFrame, day: str, expected: list[tuple]) -> None:
    df = transforms.open_orders_snapshot(events, day)
    assert rows(df, sc.OPEN_ORDER_COLS) == expected


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.POSITIONS_D1), (sc.D2, sc.POSITIONS_D2)])
def test_positions_snapshot(day: str, expected: list[tuple]) -> None:
    raw = pl.from_dicts(sc.positions(), schema=transforms.RAW_POSITION_SCHEMA, strict=False)
    df = transforms.positions_snapshot(raw, day)
    assert rows(df, sc.POSITION_COLS) == expected
    assert df.schema == tables.schema(tables.POSITIONS_SNAPSHOT)


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.STATS_D1), (sc.D2, sc.STATS_D2)])
def test_trader_daily_stats(events: pl.DataFrame, day: str, expected: list[tuple]) -> None:
    df = transforms.trader_daily_stats(events, day)
    assert rows(df, sc.STATS_COLS) == expected
    # Same result when handed the day's lifecycles.
    assert df.equals(transforms.trader_daily_stats(events, day, lifecycles=transforms.order_lifecycles(events, day)))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("filled", "filled"),
        ("canceled", "canceled"),
        ("marginCanceled", "canceled"),
        ("vaultWithdrawalCanceled", "canceled"),
        ("scheduledCancel", "canceled"),
        ("internalCancel", "canceled"),
        ("rejected", "rejected"),
        ("perpMarginRejected", "rejected"),
        ("triggered", "triggered"),
        ("unknown", "unknown"),
        ("somethingNew", "unknown"),
        (None, "open"),
    ],
)
def test_outcome_by_suffix(status: str | None, outcome: str) -> None:
    df = pl.DataFrame({"s": [status]}, schema={"s": pl.String})
    assert df.select(transforms.outcome_expr(pl.col("s"))).to_series().item() == outcome


def test_duplicate_keys_and_orphan_closes(events: pl.DataFrame) -> None:
    assert transforms.duplicate_event_keys(events).is_empty()
    dup = pl.concat([events, events.filter((pl.col("oid") == 102) & (pl.col("seq") <= 1))])
    found = transforms.duplicate_event_keys(dup)
    assert rows(found, ["oid", "action", "seq", "count"]) == [(102, "new", None, 2), (102, "updated", 1, 2)]
    assert transforms.closes_without_new(events, sc.D2).is_empty()  # 201 was recovered over REST
    orphan = events.with_columns(source=pl.lit("ws"))
    assert rows(transforms.closes_without_new(orphan, sc.D2), ["ethAddress", "oid"]) == [(sc.B, 201)]
    # Without D1's events, 101's close has no new event.
    assert rows(
        transforms.closes_without_new(events.filter(pl.col("eventAt") >= sc.at(sc.D2, "00:00:00")), sc.D2), ["oid"]
    ) == [(101,)]
