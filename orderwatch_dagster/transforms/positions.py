"""The ``positions_snapshot`` table: ``trader_positions`` documents as read, and every trader's
non-zero positions at a day's end.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.transforms.common import dex_expr

RAW_POSITION_SCHEMA = pl.Schema(
    {
        c.name: (pl.String() if c.dtype == tables.DECIMAL else c.dtype)
        for c in tables.POSITIONS_SNAPSHOT
        if c.name not in ("side", "updatedAt")
    }
    | {"observedAt": tables.UTC_TS, "createdAt": tables.UTC_TS}
)
"""``trader_positions`` documents as read."""


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
        .with_columns(side=pl.when(pl.col("szi") > 0).then(pl.lit("long")).otherwise(pl.lit("short")), dex=dex_expr())
    )
    return last.pipe(tables.conform, tables.POSITIONS_SNAPSHOT).sort(["ethAddress", "coin"]).collect()
