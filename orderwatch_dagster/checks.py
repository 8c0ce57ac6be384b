"""Asset checks, beside the assets they guard. The duplicate-key checks are blocking: a day with
duplicated events or fills stops the run before any downstream table is built on it."""


import dagster as dg
import polars as pl

from orderwatch_dagster import mongo
from orderwatch_dagster.assets import fills, order_events, order_lifecycles, trader_scorecards
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.resources import MongoResource, ParquetStore, snapshot_at
from orderwatch_dagster.transforms.common import ORDER_KEY
from orderwatch_dagster.transforms.events import closes_without_new, duplicate_event_keys
from orderwatch_dagster.transforms.fills import duplicate_fill_keys, unseen_fill_orders
from orderwatch_dagster.transforms.lifecycles import fills_disagree_with_events, lifecycle_fill_mismatches
from orderwatch_dagster.transforms.scorecards import (
    LEADERBOARD_TOLERANCE_SHARE,
    LEADERBOARD_TOLERANCE_USD,
    leaderboard_disagreements,
)

MAX_LISTED = 20
"""How many offending keys a failing check lists in its metadata."""


def _keys_md(df: pl.DataFrame) -> dg.MetadataValue:
    rows = df.head(MAX_LISTED).iter_rows(named=True)
    text = "\n".join(f"- `{r}`" for r in rows) or "_none_"
    if df.height > MAX_LISTED:
        text += f"\n- ... and {df.height - MAX_LISTED} more"
    return dg.MetadataValue.md(text)


def _orders_result(
    bad: pl.DataFrame,
    count_key: str,
    problem: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """Passed when ``bad`` (orders breaking the rule) is empty; else ``"<n> orders <problem>"``,
    with their count under ``count_key`` and the first of them listed."""
    return dg.AssetCheckResult(
        passed=bad.is_empty(),
        severity=severity,
        description=None if bad.is_empty() else f"{bad.height} orders {problem}",
        metadata={count_key: bad.height, "orders": _keys_md(bad)},
    )


def _duplicates_result(
    parquet_dups: pl.DataFrame, mongo_dups: pl.DataFrame, what: str = "event"
) -> dg.AssetCheckResult:
    passed = parquet_dups.is_empty() and mongo_dups.is_empty()
    extra_rows = int((parquet_dups["count"] - 1).sum()) if not parquet_dups.is_empty() else 0
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if passed
        else (
            f"{parquet_dups.height} duplicated {what} keys in Parquet ({extra_rows} extra rows), "
            f"{mongo_dups.height} in MongoDB"
        ),
        metadata={
            "parquet_duplicate_keys": parquet_dups.height,
            "parquet_extra_rows": extra_rows,
            "mongo_duplicate_keys": mongo_dups.height,
            "duplicate_keys": _keys_md(parquet_dups if not parquet_dups.is_empty() else mongo_dups),
        },
    )


@dg.asset_check(asset=order_events, blocking=True)
def order_events_unique_keys(
    context: dg.AssetCheckExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.AssetCheckResult:
    """At most one new and one closed per (ethAddress, oid) and one updated per (ethAddress, oid, seq),
    in the Parquet partition and in the MongoDB source for the day."""
    day = context.partition_key
    parquet_dups = duplicate_event_keys(store.read("order_events", day))
    with mongo_db.get_db() as db:
        mongo_dups = duplicate_event_keys(mongo.read_order_event_keys(db, day))
    return _duplicates_result(parquet_dups, mongo_dups)


@dg.asset_check(asset=order_events)
def order_events_row_count_matches_mongo(
    context: dg.AssetCheckExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.AssetCheckResult:
    """The Parquet partition has as many rows as MongoDB has documents for the day.

    A mismatch right after a build usually means late documents: the late-events sensor rebuilds.
    """
    day = context.partition_key
    rows = store.read("order_events", day).height
    with mongo_db.get_db() as db:
        docs = mongo.count_order_events(db, day)
    return dg.AssetCheckResult(
        passed=rows == docs,
        description=None if rows == docs else f"Parquet has {rows} rows, MongoDB {docs} documents ({docs - rows:+d})",
        metadata={"parquet_rows": rows, "mongo_documents": docs},
    )


@dg.asset_check(asset=order_events)
def closed_orders_have_new_event(context: dg.AssetCheckExecutionContext, store: ParquetStore) -> dg.AssetCheckResult:
    """Every closed event of the day has a new event for its order (in any partition up to the day)
    or is marked as recovered over REST. Per oid, also on amend chains: a modify's replacement
    has its own new event and the replaced order its own close."""
    day = context.partition_key
    orphans = closes_without_new(store.scan_until("order_events", day), day)
    return dg.AssetCheckResult(
        passed=orphans.is_empty(),
        description=None
        if orphans.is_empty()
        else f"{orphans.height} closed orders without a new event or REST recovery",
        metadata={"orphan_closes": orphans.height, "orders": _keys_md(orphans.select(ORDER_KEY))},
    )


@dg.asset_check(asset=order_lifecycles)
def order_lifecycles_one_row_per_order(
    context: dg.AssetCheckExecutionContext, store: ParquetStore
) -> dg.AssetCheckResult:
    """order_lifecycles has exactly one row per logical order: ``(ethAddress, rootOid)`` is unique
    (an amend chain is one row), and no order is the current ``oid`` of two rows (chains are
    paths: an order replaces at most one and is replaced by at most one)."""
    df = store.read("order_lifecycles", context.partition_key)
    dups = pl.concat(
        [
            df.group_by("ethAddress", "rootOid").len().rename({"rootOid": "oid"}).with_columns(key=pl.lit("rootOid")),
            df.group_by(ORDER_KEY).len().with_columns(key=pl.lit("oid")),
        ]
    )
    dups = dups.filter(pl.col("len") > 1).sort("key", *ORDER_KEY).select("key", *ORDER_KEY, "len")
    return _orders_result(dups, "duplicated_orders", "appear more than once")


@dg.asset_check(asset=order_lifecycles)
def order_lifecycles_closed_after_first_seen(
    context: dg.AssetCheckExecutionContext, store: ParquetStore
) -> dg.AssetCheckResult:
    """closedAt >= firstSeenAt for every closed order (a chain: its last order's close against
    the first event of any of its orders)."""
    df = store.read("order_lifecycles", context.partition_key)
    bad = df.filter(pl.col("closedAt") < pl.col("firstSeenAt")).select(
        "ethAddress", "rootOid", "oid", "firstSeenAt", "closedAt"
    )
    return _orders_result(bad, "bad_orders", "closed before they were first seen")


@dg.asset_check(asset=fills, blocking=True)
def fills_unique_keys(
    context: dg.AssetCheckExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.AssetCheckResult:
    """One fill per (ethAddress, oid, tid), in the Parquet partition and in the MongoDB source for
    the day (the collector's unique index guarantees it; a missing index would not)."""
    day = context.partition_key
    parquet_dups = duplicate_fill_keys(store.read("fills", day))
    with mongo_db.get_db() as db:
        mongo_dups = duplicate_fill_keys(mongo.read_fill_keys(db, day))
    return _duplicates_result(parquet_dups, mongo_dups, "fill")


@dg.asset_check(asset=fills)
def fills_row_count_matches_mongo(
    context: dg.AssetCheckExecutionContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.AssetCheckResult:
    """The Parquet partition has as many fills as MongoDB has documents for the day (by ``time``)."""
    day = context.partition_key
    rows = store.read("fills", day).height
    with mongo_db.get_db() as db:
        docs = mongo.count_fills(db, day)
    return dg.AssetCheckResult(
        passed=rows == docs,
        description=None if rows == docs else f"Parquet has {rows} fills, MongoDB {docs} documents ({docs - rows:+d})",
        metadata={"parquet_rows": rows, "mongo_documents": docs},
    )


@dg.asset_check(asset=fills, additional_deps=[order_events])
def fills_orders_seen_in_events(context: dg.AssetCheckExecutionContext, store: ParquetStore) -> dg.AssetCheckResult:
    """Counts the day's fills whose order no order event names by the day's end ("never seen").

    An order that filled entirely on arrival (an IOC or market order: every fill crossed) never
    rests, so no snapshot shows it: that is expected, and reported only. A maker fill of an unseen
    order means the order rested on the book and the snapshots missed it: the check warns (it
    never blocks). Such orders still get an ``order_lifecycles`` row (``seenInEvents`` false).
    """
    day = context.partition_key
    unseen = unseen_fill_orders(store.scan_until("order_events", day), store.read("fills", day), day)
    missed = unseen.filter(~pl.col("takerOnly"))
    n_fills = int(unseen["fills"].sum()) if not unseen.is_empty() else 0
    return dg.AssetCheckResult(
        passed=missed.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if missed.is_empty()
        else f"{missed.height} orders with maker fills never appeared in an order event (missed by the snapshots)",
        metadata={
            "never_seen_fills": n_fills,
            "never_seen_orders": unseen.height,
            "never_seen_taker_only_orders": unseen.height - missed.height,
            "never_seen_with_maker_fills": missed.height,
            "never_seen_notional_usd": float(unseen["notionalUsd"].sum()) if not unseen.is_empty() else 0.0,
            "examples": _keys_md(
                (missed if not missed.is_empty() else unseen).select("ethAddress", "oid", "coin", "fills", "takerOnly")
            ),
        },
    )


@dg.asset_check(asset=order_lifecycles, additional_deps=[fills])
def order_lifecycles_filled_sz_matches_fills(
    context: dg.AssetCheckExecutionContext, store: ParquetStore
) -> dg.AssetCheckResult:
    """Every row's ``filledSz`` and ``nFills`` equal its chain's fills summed anew: the ``fills``
    table up to the day, per order, joined to the row's ``oids`` (independent of the transform's
    own mapping of fills to chains)."""
    day = context.partition_key
    bad = lifecycle_fill_mismatches(store.read("order_lifecycles", day), store.scan_until("fills", day))
    return _orders_result(bad, "mismatched_orders", "whose filledSz differs from their fills")


@dg.asset_check(asset=order_lifecycles)
def order_lifecycles_fills_agree_with_events(
    context: dg.AssetCheckExecutionContext, store: ParquetStore
) -> dg.AssetCheckResult:
    """For chains seen in events, the size traded (``filledSz``, from fills) equals what the events
    tell (``filledSzEvents``). A warning: snapshots can miss a partial fill that the fills show
    (an order crossed in part on arrival, filled and canceled between two snapshots), and days
    before fills were collected have none."""
    df = store.read("order_lifecycles", context.partition_key)
    bad = fills_disagree_with_events(df)
    return _orders_result(
        bad, "disagreeing_orders", "whose fills and events disagree on filledSz", dg.AssetCheckSeverity.WARN
    )


@dg.asset_check(asset=trader_scorecards)
def trader_scorecards_agree_with_leaderboard(
    context: dg.AssetCheckExecutionContext, store: ParquetStore
) -> dg.AssetCheckResult:
    """Realized PnL of the fully covered 1d / 7d / 30d windows against the day / week / month PnL of
    the last leaderboard snapshot up to the day's end (at most a day older), for the traders in both;
    a warning lists those beyond the tolerance with the likely reason."""
    day = context.partition_key
    _, end = day_bounds(day)
    tolerance = f"max(${LEADERBOARD_TOLERANCE_USD:.0f}, {LEADERBOARD_TOLERANCE_SHARE:.0%} of the leaderboard's PnL)"
    near = store.latest_snapshot("leaderboard", end)
    if near is None:
        return dg.AssetCheckResult(
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="no leaderboard snapshot in the day before the day's end: nothing compared",
            metadata={"compared": 0, "tolerance": tolerance},
        )
    compared, bad = leaderboard_disagreements(store.read("trader_scorecards", day), pl.read_parquet(near))
    return dg.AssetCheckResult(
        passed=bad.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=None if bad.is_empty() else f"{bad.height} of {compared} windows disagree beyond {tolerance}",
        metadata={
            "compared": compared,
            "disagreeing": bad.height,
            "tolerance": tolerance,
            "snapshot": snapshot_at(near).isoformat(),
            "disagreements": _keys_md(bad),
        },
    )


daily_checks = [
    order_events_unique_keys,
    order_events_row_count_matches_mongo,
    closed_orders_have_new_event,
    order_lifecycles_one_row_per_order,
    order_lifecycles_closed_after_first_seen,
    fills_unique_keys,
    fills_row_count_matches_mongo,
    fills_orders_seen_in_events,
    order_lifecycles_filled_sz_matches_fills,
    order_lifecycles_fills_agree_with_events,
    trader_scorecards_agree_with_leaderboard,
]
