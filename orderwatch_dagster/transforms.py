"""Pure polars transforms: order events in, analysis tables out. No I/O.

Every public function takes the events (a ``pl.LazyFrame`` or ``pl.DataFrame`` in the
``order_events`` schema, see :mod:`orderwatch_dagster.tables`), the UTC day ``YYYY-MM-DD`` and
its parameters, and returns a ``pl.DataFrame`` in the table's schema. Events may include any
history before the day (needed for orders that span days); events after the day's end are
ignored. All work is vectorized polars expressions, so the same functions run on a day of
MongoDB documents or on a whole Parquet history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds

ORDER_KEY = ["ethAddress", "oid"]

# Raw documents -> order_events -------------------------------------------------------------

RAW_ORDER_SCHEMA = pl.Schema(
    {
        c.name: (pl.String() if c.dtype == tables.DECIMAL else c.dtype)
        for c in tables.ORDER_EVENTS
        if c.name not in ("eventAt", "notionalUsd")
    }
)
"""``trader_orders`` documents as read: decimals are still the exchange's strings."""

RAW_POSITION_SCHEMA = pl.Schema(
    {
        c.name: (pl.String() if c.dtype == tables.DECIMAL else c.dtype)
        for c in tables.POSITIONS_SNAPSHOT
        if c.name not in ("side", "updatedAt")
    }
    | {"observedAt": tables.UTC_TS, "createdAt": tables.UTC_TS}
)
"""``trader_positions`` documents as read."""


def normalize_order_events(raw: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Type raw ``trader_orders`` documents into the ``order_events`` schema, sorted by time."""
    lf = raw.lazy().with_columns(
        [pl.col(c).cast(tables.DECIMAL) for c in ("limitPx", "sz", "origSz", "triggerPx", "prevSz", "prevLimitPx")]
    )
    lf = lf.with_columns(
        eventAt=pl.coalesce("observedAt", "createdAt"),
        notionalUsd=pl.col("sz").cast(pl.Float64) * pl.col("limitPx").cast(pl.Float64),
    )
    return (
        tables.conform(lf, tables.ORDER_EVENTS).sort(["eventAt", "ethAddress", "oid", "seq"], nulls_last=True).collect()
    )


def _events_until(events: pl.DataFrame | pl.LazyFrame, day: str | date) -> tuple[pl.LazyFrame, object, object]:
    start, end = day_bounds(day)
    return events.lazy().filter(pl.col("eventAt") < end), start, end


def _event_order() -> pl.Expr:
    """One Int128 per event that orders an order's events: ``seq`` (null last), then time.

    The aggregations pick an order's first / last events with ``min_by`` / ``max_by`` of this key
    instead of sorting the whole history (a multi-column sort that moves every column was most of
    the transforms' time). ``eventAt`` is never null here: ``_events_until`` drops null times.
    """
    seq = pl.col("seq").fill_null(pl.Int64.max()).cast(pl.Int128)
    return seq * (1 << 64) + pl.col("eventAt").dt.epoch("us").cast(pl.Int128)


# Outcomes ------------------------------------------------------------------------------------

CANCELED_EXACT = ("canceled", "scheduledCancel", "internalCancel")


def outcome_expr(final_status: pl.Expr) -> pl.Expr:
    """Classify an open-ended ``finalStatus`` by suffix; null (no close seen) is ``open``."""
    return (
        pl.when(final_status.is_null())
        .then(pl.lit("open"))
        .when(final_status == "filled")
        .then(pl.lit("filled"))
        .when(final_status.str.ends_with("Canceled") | final_status.is_in(CANCELED_EXACT))
        .then(pl.lit("canceled"))
        .when(final_status.str.ends_with("Rejected") | (final_status == "rejected"))
        .then(pl.lit("rejected"))
        .when(final_status == "triggered")
        .then(pl.lit("triggered"))
        .otherwise(pl.lit("unknown"))
    )


# order_lifecycles ----------------------------------------------------------------------------


def order_lifecycles(events: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """One row per order seen by the day's end that closed that day or is still open at its end."""
    return _lifecycles_lazy(events, day).collect()


def _lifecycles_lazy(events: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.LazyFrame:
    lf, start, end = _events_until(events, day)
    is_closed = pl.col("action") == "closed"
    is_update = pl.col("action") == "updated"
    order = _event_order()
    # Every per-event input is computed before the group_by, so that each aggregation is a plain
    # reduction of one column (no filters evaluated per group; min_by / max_by skip null keys, so
    # a key nulled outside a condition picks among the matching events only). Categorical strings
    # make the group key two integers and the picked values integers.
    per_event = lf.select(
        pl.col("ethAddress", "coin", "side", "orderType", "finalStatus").cast(pl.Categorical),
        "oid",
        "parentOid",
        "timestamp",
        "eventAt",
        "origSz",
        "sz",
        "notionalUsd",
        order_=order,
        closedOrder_=pl.when(is_closed).then(order),
        openOrder_=pl.when(~is_closed).then(order),
        origSzOrder_=pl.when(pl.col("origSz").is_not_null()).then(order),
        closedAt_=pl.when(is_closed).then(pl.col("eventAt")),
        update_=is_update,
        priceChange_=is_update & pl.col("changes").list.contains("limitPx"),
        partial_=pl.when(pl.col("partialFill")).then(pl.col("prevSz") - pl.col("sz")),
        rest_=pl.col("source") == "rest",
    )
    agg = (
        per_event.group_by(ORDER_KEY)
        .agg(
            coin=pl.col("coin").max_by("order_"),
            side=pl.col("side").max_by("order_"),
            orderType=pl.col("orderType").max_by("order_"),
            parentOid=pl.col("parentOid").max(),
            placedAt=pl.col("timestamp").min(),
            firstSeenAt=pl.col("eventAt").min(),
            closedAt=pl.col("closedAt_").max(),
            finalStatus=pl.col("finalStatus").max_by("closedOrder_"),
            nUpdates=pl.col("update_").sum(),
            nPriceChanges=pl.col("priceChange_").sum(),
            origSz=pl.col("origSz").min_by("origSzOrder_"),
            lastOpenSz=pl.col("sz").max_by("openOrder_"),
            closedSz=pl.col("sz").max_by("closedOrder_"),
            partialSz=pl.col("partial_").sum(),
            maxNotionalUsd=pl.col("notionalUsd").max(),
            recovered=pl.col("rest_").any(),
        )
        .filter(pl.col("closedAt").is_null() | (pl.col("closedAt") >= start))
        .with_columns(pl.col(pl.Categorical).cast(pl.String))
    )
    zero = pl.lit(0).cast(tables.DECIMAL)
    last_sz = pl.coalesce("lastOpenSz", "closedSz")
    outcome = outcome_expr(pl.col("finalStatus"))
    return (
        agg.with_columns(
            placedAt=pl.coalesce("placedAt", "firstSeenAt"),
            lastSz=last_sz,
            outcome=outcome,
            partialSz=pl.col("partialSz").fill_null(zero),
        )
        .with_columns(
            filledSz=pl.when(pl.col("outcome") == "filled")
            # A fill removes the order without a last size decrease: the remainder was filled
            # (REST reports a filled order's sz as 0: then everything not yet counted was).
            .then(
                pl.col("partialSz")
                + pl.when(pl.col("lastSz") > zero)
                .then(pl.col("lastSz"))
                .otherwise(pl.col("origSz") - pl.col("partialSz"))
            )
            .otherwise(pl.col("partialSz")),
            durationS=(pl.coalesce("closedAt", pl.lit(end)) - pl.col("placedAt")).dt.total_microseconds() / 1e6,
        )
        .pipe(tables.conform, tables.ORDER_LIFECYCLES)
        .sort(ORDER_KEY)
    )


# large_change_alerts -------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertThresholds:
    """When an event is worth an alert (all USD notionals, sz x limitPx)."""

    threshold_usd: float = 100_000.0
    """A new order at or above this, an update crossing it upwards, a close of an order at or above it."""
    min_change_share: float = 0.5
    """An update must change the notional by more than this share of the notional before..."""
    min_change_usd: float = 50_000.0
    """...and by more than this amount."""


def large_change_alerts(
    events: pl.DataFrame | pl.LazyFrame, day: str | date, params: AlertThresholds = AlertThresholds()
) -> pl.DataFrame:
    """The day's events worth a look: large new orders, large notional changes, large closes."""
    lf, start, _ = _events_until(events, day)
    lf = lf.with_columns(pl.col("ethAddress").cast(pl.Categorical))
    touched = lf.filter(pl.col("eventAt") >= start).select(ORDER_KEY).unique()
    lf = lf.join(touched, on=ORDER_KEY, how="semi")
    f64 = pl.Float64
    prev_notional = pl.col("notionalUsd").shift(1).over(ORDER_KEY, order_by=_event_order())
    action = pl.col("action")
    before = (
        pl.when(action == "new")
        .then(pl.lit(0.0))
        .when(action == "updated")
        .then(
            pl.coalesce(
                pl.coalesce("prevSz", "sz").cast(f64) * pl.coalesce("prevLimitPx", "limitPx").cast(f64),
                prev_notional,
            )
        )
        .otherwise(pl.coalesce(prev_notional, pl.col("notionalUsd")))
    )
    after = pl.when(action == "closed").then(pl.lit(0.0)).otherwise(pl.col("notionalUsd"))
    thr = params.threshold_usd
    b, a = pl.col("notionalBeforeUsd"), pl.col("notionalAfterUsd")
    change = (a - b).abs()
    reasons = [
        pl.when((action == "new") & (a >= thr)).then(pl.lit("large_order")),
        pl.when((action == "updated") & (b < thr) & (a >= thr)).then(pl.lit("crossed_threshold")),
        pl.when((action == "updated") & (change > params.min_change_usd) & (change > params.min_change_share * b)).then(
            pl.lit("large_change")
        ),
        pl.when((action == "closed") & (b >= thr)).then(pl.lit("large_close")),
    ]
    out = (
        lf.with_columns(notionalBeforeUsd=before, notionalAfterUsd=after)
        .filter(pl.col("eventAt") >= start)
        .with_columns(reason=pl.concat_str(reasons, separator=",", ignore_nulls=True))
        .filter(pl.col("reason").is_not_null() & (pl.col("reason") != ""))
        .with_columns(
            alertKey=pl.concat_str(
                [pl.col("ethAddress"), pl.col("oid").cast(pl.String), pl.col("eventKey")], separator=":"
            ),
            changeUsd=a - b,
            message=pl.format(
                "{} {} {} oid {} {}: {} notional {} -> {} USD",
                "ethAddress",
                "side",
                "coin",
                "oid",
                "action",
                "reason",
                b.round(0).cast(pl.Int64),
                a.round(0).cast(pl.Int64),
            ),
        )
    )
    return out.pipe(tables.conform, tables.LARGE_CHANGE_ALERTS).sort(["eventAt", "alertKey"]).collect()


# open_orders_snapshot ------------------------------------------------------------------------


def open_orders_snapshot(events: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """Every order whose last event by the day's end is not a close, in its last known state."""
    lf, _, _ = _events_until(events, day)
    last = (
        lf.with_columns(order_=_event_order())
        .group_by(ORDER_KEY)
        .agg(
            pl.all().exclude(*ORDER_KEY, "order_").max_by("order_"),
            placedAt_=pl.col("timestamp").min(),
            firstSeenAt_=pl.col("eventAt").min(),
        )
        .filter(pl.col("action") != "closed")
        .with_columns(placedAt=pl.coalesce("placedAt_", "firstSeenAt_"), lastEventAt=pl.col("eventAt"))
    )
    return last.pipe(tables.conform, tables.OPEN_ORDERS_SNAPSHOT).sort(ORDER_KEY).collect()


# positions_snapshot --------------------------------------------------------------------------


def positions_snapshot(positions: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """Every trader's non-zero positions at the day's end: the last state per (ethAddress, coin)."""
    _, end = day_bounds(day)
    lf = positions.lazy().with_columns(updatedAt=pl.coalesce("observedAt", "createdAt"))
    decimals = [c.name for c in tables.POSITIONS_SNAPSHOT if c.dtype == tables.DECIMAL]
    last = (
        lf.filter(pl.col("updatedAt") < end)
        .sort(["ethAddress", "coin", "updatedAt", "serverTime"], nulls_last=True)
        .group_by(["ethAddress", "coin"])
        .agg(pl.all().last())
        .with_columns([pl.col(c).cast(tables.DECIMAL) for c in decimals])
        .filter(pl.col("szi") != pl.lit(0).cast(tables.DECIMAL))
        .with_columns(side=pl.when(pl.col("szi") > 0).then(pl.lit("long")).otherwise(pl.lit("short")))
    )
    return last.pipe(tables.conform, tables.POSITIONS_SNAPSHOT).sort(["ethAddress", "coin"]).collect()


# trader_daily_stats --------------------------------------------------------------------------


def trader_daily_stats(
    events: pl.DataFrame | pl.LazyFrame,
    day: str | date,
    lifecycles: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Per trader, the day's behaviour: placed / amended / filled / canceled, timings, notional.

    ``lifecycles`` (that day's ``order_lifecycles``) is computed from ``events`` when not given.
    """
    lf, start, _ = _events_until(events, day)
    lc = _lifecycles_lazy(lf, day) if lifecycles is None else lifecycles.lazy()
    action = pl.col("action")
    by_events = (
        lf.filter(pl.col("eventAt") >= start)
        .group_by("ethAddress")
        .agg(
            nEvents=pl.len(),
            ordersPlaced=(action == "new").sum(),
            ordersAmended=pl.col("oid")
            .filter((action == "updated") & ~pl.col("partialFill").fill_null(False))
            .n_unique(),
            notionalPlacedUsd=pl.col("notionalUsd").filter(action == "new").sum(),
            coinsTraded=pl.col("coin").n_unique(),
            coins=pl.col("coin").unique().sort(),
        )
    )
    outcome = pl.col("outcome")
    closed_today = pl.col("closedAt") >= start
    by_orders = lc.group_by("ethAddress").agg(
        ordersFilled=(closed_today & (outcome == "filled")).sum(),
        ordersCanceled=(closed_today & (outcome == "canceled")).sum(),
        ordersRejected=(closed_today & (outcome == "rejected")).sum(),
        openOrdersAtEnd=(outcome == "open").sum(),
        medianTimeToFillS=pl.col("durationS").filter(closed_today & (outcome == "filled")).median(),
        medianTimeToCancelS=pl.col("durationS").filter(closed_today & (outcome == "canceled")).median(),
    )
    counts = [
        "nEvents",
        "ordersPlaced",
        "ordersAmended",
        "ordersFilled",
        "ordersCanceled",
        "ordersRejected",
        "openOrdersAtEnd",
        "coinsTraded",
    ]
    joined = (
        by_events.join(by_orders, on="ethAddress", how="full", coalesce=True)
        .with_columns([pl.col(c).fill_null(0) for c in counts])
        .with_columns(
            notionalPlacedUsd=pl.col("notionalPlacedUsd").fill_null(0.0),
            coins=pl.col("coins").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            cancelRatio=pl.when(pl.col("ordersPlaced") > 0)
            .then(pl.col("ordersCanceled") / pl.col("ordersPlaced"))
            .otherwise(None),
        )
    )
    return joined.pipe(tables.conform, tables.TRADER_DAILY_STATS).sort("ethAddress").collect()


# checks --------------------------------------------------------------------------------------


def duplicate_event_keys(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Event keys that occur more than once: ``(ethAddress, oid, action, seq-for-updates)`` with counts.

    At most one ``new`` and one ``closed`` per order, one ``updated`` per ``(order, seq)``.
    """
    key_seq = pl.when(pl.col("action") == "updated").then(pl.col("seq")).otherwise(None)
    return (
        events.lazy()
        .select(*ORDER_KEY, "action", key_seq.alias("seq"))
        .group_by([*ORDER_KEY, "action", "seq"])
        .agg(count=pl.len())
        .filter(pl.col("count") > 1)
        .sort([*ORDER_KEY, "action", "seq"], nulls_last=True)
        .collect()
    )


def closes_without_new(events: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """The day's ``closed`` events with no ``new`` event for their order (by the day's end) that
    were not recovered over REST."""
    lf, start, _ = _events_until(events, day)
    news = lf.filter(pl.col("action") == "new").select(ORDER_KEY).unique()
    recovered = lf.filter(pl.col("source") == "rest").select(ORDER_KEY).unique()
    return (
        lf.filter((pl.col("action") == "closed") & (pl.col("eventAt") >= start))
        .join(news, on=ORDER_KEY, how="anti")
        .join(recovered, on=ORDER_KEY, how="anti")
        .select(*ORDER_KEY, "eventAt", "finalStatus")
        .sort(ORDER_KEY)
        .collect()
    )
