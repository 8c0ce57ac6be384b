"""The ``positions_snapshot`` table: ``trader_positions`` documents as read, and every trader's
non-zero positions at a day's end, each with its liquidation risk as of that state.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.transforms.common import dex_expr

DERIVED = ("side", "markPx", "liquidationDistancePct", "updatedAt")
"""Columns of the table computed here, not read."""

RAW_POSITION_SCHEMA = pl.Schema(
    {
        c.name: (pl.String() if c.dtype == tables.DECIMAL else c.dtype)
        for c in tables.POSITIONS_SNAPSHOT
        if c.name not in DERIVED
    }
    | {"observedAt": tables.UTC_TS, "createdAt": tables.UTC_TS}
)
"""``trader_positions`` documents as read."""


def positions_snapshot(positions: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """Every trader's non-zero positions at the day's end: the last state per (ethAddress, coin),
    with the mark it was valued at and how far that mark is from the liquidation price (the same
    measure as the ``near_liquidation`` alert's, which uses the live mark instead)."""
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
        .with_columns(side=pl.when(pl.col("szi") > 0).then(pl.lit("long")).otherwise(pl.lit("short")), dex=dex_expr())
        .with_columns(markPx=pl.col("positionValue").cast(pl.Float64) / pl.col("szi").cast(pl.Float64).abs())
        .with_columns(liquidationDistancePct=(
            pl.when(pl.col("side") == "long")
            .then(pl.col("markPx") - pl.col("liquidationPx").cast(pl.Float64))
            .otherwise(pl.col("liquidationPx").cast(pl.Float64) - pl.col("markPx"))
            / pl.col("markPx") * 100
        ))
    )
    return last.pipe(tables.conform, tables.POSITIONS_SNAPSHOT).sort(["ethAddress", "coin"]).collect()
