"""The ``open_orders_snapshot`` table: every order still open at a day's end, in its last known state.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.transforms.common import ORDER_KEY, dex_expr, event_order, events_until


def open_orders_snapshot(events: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """Every order whose last event by the day's end is not a close, in its last known state."""
    lf, _, _ = events_until(events, day)
    last = (
        lf.with_columns(order_=event_order())
        .group_by(ORDER_KEY)
        .agg(
            pl.all().exclude(*ORDER_KEY, "order_").max_by("order_"),
            placedAt_=pl.col("timestamp").min(),
            firstSeenAt_=pl.col("eventAt").min(),
        )
        .filter(pl.col("action") != "closed")
        .with_columns(placedAt=pl.coalesce("placedAt_", "firstSeenAt_"), lastEventAt=pl.col("eventAt"), dex=dex_expr())
    )
    return last.pipe(tables.conform, tables.OPEN_ORDERS_SNAPSHOT).sort(ORDER_KEY).collect()
