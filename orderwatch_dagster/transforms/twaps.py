"""The ``twaps`` table (followed traders' TWAP orders as at a day's end) and the large-TWAP alerts.

Inputs: ``trader_twaps`` documents (one per status change, :data:`collector_service.schema.TWAPS`)
and the TWAP slice fills in the ``fills`` table (``twapId`` set). A TWAP that ended takes its
executed size and notional from the exchange's end status; one still running at the day's end
from its slice fills stored by then.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from collector_service import schema
from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.transforms.common import with_labels

TWAP_KEY = ["ethAddress", "twapId"]
MAX_TWAP_MINUTES = 1440
"""A TWAP runs at most a day: one running during a day started at most this long before it."""

RAW_TWAP_SCHEMA = pl.Schema(
    {
        "ethAddress": pl.String(),
        "twapId": pl.Int64(),
        "status": pl.String(),
        "coin": pl.String(),
        "dex": pl.String(),
        "side": pl.String(),
        "sz": pl.String(),
        "executedSz": pl.String(),
        "executedNtl": pl.String(),
        "minutes": pl.Int64(),
        "reduceOnly": pl.Boolean(),
        "randomize": pl.Boolean(),
        "timestamp": tables.UTC_TS,
        "statusTime": tables.UTC_TS,
    }
)
"""``trader_twaps`` documents as read: decimals are still the exchange's strings."""


def twaps_table(
    docs: pl.DataFrame, fills: pl.DataFrame | pl.LazyFrame, day: str | date, watchlist: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per TWAP that ran during the day (started before its end, not ended before its
    start), in its state at the day's end; see :data:`tables.TWAPS`. ``watchlist``
    (:func:`.common.watchlist_frame`) gives ``label`` and ``tags``."""
    return twaps_between(docs, fills, *day_bounds(day), watchlist)


def twaps_between(
    docs: pl.DataFrame,
    fills: pl.DataFrame | pl.LazyFrame,
    start: datetime,
    end: datetime,
    watchlist: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per TWAP that ran between ``start`` and ``end``, in its state at ``end``."""
    known = docs.lazy().filter(pl.col("statusTime") < end).with_columns(
        [pl.col(c).cast(tables.DECIMAL) for c in ("sz", "executedSz", "executedNtl")]
    )
    first = known.sort("statusTime").group_by(TWAP_KEY).agg(
        pl.col("coin", "dex", "side", "sz", "minutes", "reduceOnly", "randomize").first(),
        startedAt=pl.col("timestamp").min(),
    )
    ends = (
        known.filter(pl.col("status").is_in(schema.TWAP_END_STATUSES))
        .sort("statusTime")
        .group_by(TWAP_KEY)
        .agg(
            pl.col("status").first(),
            endedAt=pl.col("statusTime").first(),
            endSz=pl.col("executedSz").first(),
            endNtl=pl.col("executedNtl").first(),
        )
    )
    sliced = (
        fills.lazy()
        .filter(pl.col("twapId").is_not_null() & (pl.col("time") < end))
        .group_by(TWAP_KEY)
        .agg(
            slices=pl.len(),
            fillSz=pl.col("sz").cast(pl.Float64).sum(),
            fillNtl=(pl.col("px").cast(pl.Float64) * pl.col("sz").cast(pl.Float64)).sum(),
        )
    )
    running = pl.col("status").is_null()
    lf = (
        first.join(ends, on=TWAP_KEY, how="left")
        .join(sliced, on=TWAP_KEY, how="left")
        .filter((pl.col("startedAt") < end) & (running | (pl.col("endedAt") >= start)))
        .with_columns(
            status=pl.col("status").fill_null(schema.TWAP_ACTIVATED),
            plannedEndAt=pl.col("startedAt") + pl.duration(minutes=pl.col("minutes")),
            executedSz=pl.when(running).then(pl.col("fillSz").fill_null(0.0).cast(tables.DECIMAL)).otherwise("endSz"),
            executedNtl=pl.when(running)
            .then(pl.col("fillNtl").fill_null(0.0).cast(tables.DECIMAL))
            .otherwise("endNtl"),
            slices=pl.col("slices").fill_null(0),
        )
        .with_columns(
            avgPx=pl.when(pl.col("executedSz") > 0).then(
                pl.col("executedNtl").cast(pl.Float64) / pl.col("executedSz").cast(pl.Float64)
            ),
            progress=pl.col("executedSz").cast(pl.Float64) / pl.col("sz").cast(pl.Float64),
        )
        .with_columns(notionalUsd=pl.col("sz").cast(pl.Float64) * pl.col("avgPx"))
        .pipe(with_labels, watchlist)
    )
    return tables.conform(lf, tables.TWAPS).sort(["startedAt", *TWAP_KEY]).collect()


TWAP_ALERT_SCHEMA = pl.Schema(
    {
        "alertKey": pl.String(),
        "eventAt": tables.UTC_TS,
        "ethAddress": pl.String(),
        "twapId": pl.Int64(),
        "coin": pl.String(),
        "dex": pl.String(),
        "side": pl.String(),
        "action": pl.String(),
        "reason": pl.String(),
        "notionalBeforeUsd": pl.Float64(),
        "notionalAfterUsd": pl.Float64(),
        "finalStatus": pl.String(),
        "message": pl.String(),
        "label": pl.String(),
        "tags": pl.List(pl.String()),
    }
)
"""A TWAP alert as stored in ``order_alerts`` (the outbox delivers it like an order alert)."""

ACTION_TWAP = "twap"


def twap_alerts(twaps: pl.DataFrame, day: str | date, threshold_usd: float) -> pl.DataFrame:
    """One alert per start and one per end, within the day, of a TWAP whose planned notional
    (``notionalUsd``: size x average price) is at least ``threshold_usd``; a TWAP none of whose
    slices has traded yet has no price, so its start is alerted once one has (by the fast alert
    sensor, or the daily run after)."""
    return twap_alerts_between(twaps, *day_bounds(day), threshold_usd)


def twap_alerts_between(twaps: pl.DataFrame, start: datetime, end: datetime, threshold_usd: float) -> pl.DataFrame:
    """:func:`twap_alerts` of the starts and ends between ``start`` and ``end``."""
    large = twaps.lazy().filter(pl.col("notionalUsd") >= threshold_usd)
    side = pl.when(pl.col("side") == "B").then(pl.lit("buy")).otherwise(pl.lit("sell"))
    base: list[str | pl.Expr] = [
        "ethAddress", "twapId", "coin", "dex", "side", "label", "tags",
        pl.lit(ACTION_TWAP).alias("action"), pl.lit(0.0).alias("notionalBeforeUsd"),
        pl.col("notionalUsd").alias("notionalAfterUsd"),
    ]
    about = pl.format(
        "TWAP {} {} {} {} over {} min (~${} at avg px {})",
        "twapId", side, pl.col("sz").cast(pl.Float64), "coin", "minutes",
        pl.col("notionalUsd").round(0).cast(pl.Int64), pl.col("avgPx"),
    )
    who = pl.when(pl.col("label").is_not_null()).then(pl.format("{} ({})", "ethAddress", "label")).otherwise(
        "ethAddress"
    )
    starts = large.filter((pl.col("startedAt") >= start) & (pl.col("startedAt") < end)).select(
        *base,
        eventAt="startedAt",
        reason=pl.lit("large_twap_start"),
        finalStatus=pl.lit(None, pl.String()),
        status_=pl.lit(schema.TWAP_ACTIVATED),
        message=pl.format("{} started {}", who, about),
    )
    ended = large.filter(pl.col("endedAt").is_not_null() & (pl.col("endedAt") >= start) & (pl.col("endedAt") < end))
    ends = ended.select(
        *base,
        eventAt="endedAt",
        reason=pl.lit("large_twap_end"),
        finalStatus="status",
        status_="status",
        message=pl.format("{} {} {} ({}% executed)", who, "status", about,
                          (pl.col("progress") * 100).round(1)),
    )
    out = pl.concat([starts, ends]).with_columns(
        alertKey=pl.format("{}:twap:{}:{}", "ethAddress", "twapId", "status_")
    )
    return out.select([pl.col(n).cast(t) for n, t in TWAP_ALERT_SCHEMA.items()]).sort(["eventAt", "alertKey"]).collect()
