"""The daily tables: one asset per Parquet table, all partitioned by UTC day in group ``daily``,
and the day's HTML report built from them.

Each asset is a thin shell: read (MongoDB or earlier Parquet partitions), call a pure transform
from :mod:`orderwatch_dagster.transforms`, write the partition atomically, describe the result
(row count, schema, a preview and a chart).
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import polars as pl

from orderwatch_dagster import charts, mongo, report, tables
from orderwatch_dagster.partitions import daily_partitions, day_bounds
from orderwatch_dagster.resources import MongoResource, ParquetStore
from orderwatch_dagster.rules import load_rules
from orderwatch_dagster.transforms import alerts, daily_stats, lifecycles, open_orders, positions, scorecards, twaps
from orderwatch_dagster.transforms.common import ORDER_KEY

GROUP = "daily"
PREVIEW_ROWS = 10


def markdown(df: pl.DataFrame, rows: int = PREVIEW_ROWS) -> str:
    """A small markdown table of the first rows (no pandas/tabulate needed)."""
    head = df.head(rows)
    if df.width == 0:
        return "_(no columns)_"

    def cell(v: object) -> str:
        s = "" if v is None else str(v)
        return s.replace("|", "\\|").replace("\n", " ")[:60]

    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if df.height > rows:
        lines.append(f"\n_{rows} of {df.height} rows_")
    return "\n".join(lines) if df.height else "_(no rows)_"


def column_schema(table: str) -> dg.TableSchema:
    """The table's columns for the Dagster UI."""
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, str(c.dtype), description=c.description) for c in tables.TABLES[table]]
    )


def _result(table: str, day: str, df: pl.DataFrame, store: ParquetStore, **extra: Any) -> dg.MaterializeResult:
    path = store.write(table, day, df)
    chart = charts.table_chart(table, df, day)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": df.height,
            "dagster/column_schema": column_schema(table),
            "path": dg.MetadataValue.path(path),
            "preview": dg.MetadataValue.md(markdown(df)),
            "chart": dg.MetadataValue.md(charts.markdown_image(chart, f"{table} {day}")),
            **extra,
        }
    )


def _asset(
    table: str, *, description: str, deps: Sequence[dg.AssetsDefinition] = ()
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A daily-partitioned asset of group ``daily`` writing the Parquet table ``table``."""
    return dg.asset(
        name=table,
        partitions_def=daily_partitions,
        group_name=GROUP,
        kinds={"polars", "parquet"},
        metadata={"dagster/column_schema": column_schema(table)},
        description=description,
        deps=list(deps),
    )


@_asset(
    "order_events", description="The day's trader_orders documents (by observedAt, else createdAt), typed and sorted."
)
def order_events(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    with mongo_db.get_db() as db:
        df = mongo.read_order_events(db, day)
    return _result("order_events", day, df, store, orders=df.select(ORDER_KEY).n_unique())


@_asset(
    "fills",
    description=(
        "The day's trader_fills documents (by the fill's own time), typed, with notionalUsd, isMaker and feeUsd "
        "(the fee when charged in USDC)."
    ),
)
def fills(context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore) -> dg.MaterializeResult:
    day = context.partition_key
    with mongo_db.get_db() as db:
        df = mongo.read_fills(db, day)
    return _result(
        "fills",
        day,
        df,
        store,
        orders=df.select(ORDER_KEY).n_unique(),
        volume_usd=float(df["notionalUsd"].sum()),
    )


@_asset(
    "order_lifecycles",
    deps=[order_events, fills],
    description=(
        "One row per logical order (an amend chain: a modify is a cancel-and-replace) whose last order closed "
        "that day or is still open at its end, from all events up to the day's end, with what its fills traded; "
        "plus orders known only from their fills (they never rested)."
    ),
)
def order_lifecycles(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    history = store.scan_until("order_events", day)
    with mongo_db.get_db() as db:
        watchlist = mongo.read_watchlist(db)
    df = lifecycles.order_lifecycles(history, day, store.scan_until("fills", day), watchlist)
    outcomes = dict(df.group_by("outcome").len().iter_rows())
    return _result(
        "order_lifecycles",
        day,
        df,
        store,
        **{f"outcome_{k}": int(v) for k, v in sorted(outcomes.items())},
        known_only_from_fills=int((~df["seenInEvents"]).sum()),
    )


@_asset(
    "large_change_alerts",
    deps=[order_events],
    description=(
        "Large new orders, large notional changes (a replacement against the order it replaced) and closes of large "
        "orders, by the [thresholds] of alert_rules.toml (ORDERWATCH_ALERT_RULES); also upserted into MongoDB "
        "order_alerts."
    ),
)
def large_change_alerts(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    # The same file as fast_alert_sensor's: one definition of an alert.
    params = load_rules().thresholds.params()
    with mongo_db.get_db() as db:
        watchlist = mongo.read_watchlist(db)
        df = alerts.large_change_alerts(store.scan_until("order_events", day), day, params, watchlist)
        inserted = mongo.write_alerts(db, df)
    context.log.info(f"alerts day={day} rows={df.height} new_in_mongo={inserted}")
    return _result("large_change_alerts", day, df, store, new_alerts=inserted)


@_asset(
    "open_orders_snapshot",
    deps=[order_events],
    description="Every trader's open orders at the end of the day, in their last known state.",
)
def open_orders_snapshot(context: dg.AssetExecutionContext, store: ParquetStore) -> dg.MaterializeResult:
    day = context.partition_key
    df = open_orders.open_orders_snapshot(store.scan_until("order_events", day), day)
    return _result("open_orders_snapshot", day, df, store)


@_asset(
    "positions_snapshot",
    description="Every trader's non-zero positions at the end of the day, from trader_positions.",
)
def positions_snapshot(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    with mongo_db.get_db() as db:
        raw = mongo.read_positions(db, day)
    df = positions.positions_snapshot(raw, day)
    return _result("positions_snapshot", day, df, store)


@_asset(
    "trader_daily_stats",
    deps=[order_events, order_lifecycles, fills],
    description=(
        "Per trader and day: orders placed, amended (amends counted apart from cancels), filled, canceled, cancel "
        "ratio, median times, notional, coins; volume, fees, realized PnL and maker ratio of the day's fills."
    ),
)
def trader_daily_stats(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    with mongo_db.get_db() as db:
        watchlist = mongo.read_watchlist(db)
    df = daily_stats.trader_daily_stats(
        store.scan_until("order_events", day),
        day,
        lifecycles=store.read("order_lifecycles", day),
        fills=store.read("fills", day),
        watchlist=watchlist,
    )
    return _result("trader_daily_stats", day, df, store)


@_asset(
    "twaps",
    deps=[fills],
    description=(
        "Followed traders' TWAP orders that ran during the day, as at its end (start, side, size, duration, progress, "
        "average price, end status), from trader_twaps and the TWAP slice fills; a TWAP of at least [thresholds] "
        "twap_threshold_usd (alert_rules.toml) alerts at its start and its end through order_alerts (the outbox)."
    ),
)
def twap_orders(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    threshold = load_rules().thresholds.twap_threshold_usd
    with mongo_db.get_db() as db:
        df = twaps.twaps_table(mongo.read_twaps(db, day), store.scan_until("fills", day), day, mongo.read_watchlist(db))
        found = twaps.twap_alerts(df, day, threshold)
        inserted = mongo.write_alerts(db, found)
    context.log.info(f"twaps day={day} rows={df.height} alerts={found.height} new_in_mongo={inserted}")
    return _result("twaps", day, df, store, alerts=found.height, new_alerts=inserted)


@_asset(
    "trader_account_days",
    description=(
        "Per trader, account (dex) and day: the account value series of trader_accounts as open / high / low / "
        "close and the intraday maximum drawdown (what the scorecards' drawdown and volatility are built from)."
    ),
)
def trader_account_days(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    with mongo_db.get_db() as db:
        raw = mongo.read_accounts(db, day)
    df = scorecards.trader_account_days(raw, day)
    return _result("trader_account_days", day, df, store, samples=int(df["samples"].sum()))


@_asset(
    "trader_scorecards",
    deps=[fills, order_lifecycles, positions_snapshot, trader_account_days],
    description=(
        "Per trader and window (1, 7, 30 days and since followed, all ending at the day's end): realized and "
        "unrealized PnL, fees, volume, round trips (count, win rate, profit factor, hold times), account drawdown "
        "and volatility, leverage, and the order behaviour only orderwatch sees (cancel ratio, modify rate, time "
        "to first fill, maker share, distance from mid); every trader ever followed keeps its rows."
    ),
)
def trader_scorecards(
    context: dg.AssetExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.MaterializeResult:
    day = context.partition_key
    with mongo_db.get_db() as db:
        watchlist = mongo.read_watchlist(db)
        marks = mongo.read_marks(db)
    df = scorecards.trader_scorecards(
        day,
        fills=store.scan_until("fills", day),
        lifecycles=store.scan_until("order_lifecycles", day, partition_day="partitionDay"),
        positions=store.scan_until("positions_snapshot", day, partition_day="partitionDay"),
        account_days=store.scan_until("trader_account_days", day),
        marks=marks,
        watchlist=watchlist,
    )
    partial = int(df["partial"].sum())
    return _result("trader_scorecards", day, df, store, traders=df["ethAddress"].n_unique(), partial_rows=partial)


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"html"},
    deps=[order_events, fills, order_lifecycles, large_change_alerts, trader_daily_stats, positions_snapshot,
          trader_scorecards],
    description=(
        "The day's HTML report for people: activity per trader, order lifetimes, fill rates, large changes on a "
        "timeline, a page per large trader (PnL, position and price, distance to liquidation, amend chains), "
        "leaderboard cohorts and data-quality notes; one self-contained page at "
        "<data>/reports/date=YYYY-MM-DD/report.html."
    ),
)
def daily_report(context: dg.AssetExecutionContext, store: ParquetStore) -> dg.MaterializeResult:
    day = context.partition_key
    missing = [t for t in report.TABLES if not store.exists(t, day)]
    frames = {t: report.empty(t) if t in missing else store.read(t, day) for t in report.TABLES}
    board = store.latest_snapshot("leaderboard", day_bounds(day)[1])
    page = report.build(
        day,
        frames,
        missing_tables=missing,
        gaps=report.missing_days(store.days("order_events"), day),
        built_at=datetime.now(UTC),
        leaderboard=None if board is None else pl.read_parquet(board),
    )
    path = store.write_report(day, page)
    url = store.report_url(day)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(path),
            **({"report": dg.MetadataValue.url(url)} if url else {}),
            "size_kb": round(len(page.encode()) / 1024, 1),
            "missing_tables": dg.MetadataValue.text(", ".join(missing) or "none"),
        }
    )


daily_assets = [
    order_events,
    fills,
    order_lifecycles,
    large_change_alerts,
    open_orders_snapshot,
    positions_snapshot,
    trader_daily_stats,
    twap_orders,
    trader_account_days,
    trader_scorecards,
    daily_report,
]
