"""The ``order_events`` table: ``trader_orders`` documents as read (decimals still the exchange's
strings) normalized to its schema, and its checks (duplicate event keys, closes without a ``new``).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.transforms.common import ORDER_KEY, dex_expr, events_until

RAW_ORDER_SCHEMA = pl.Schema(
    {
        c.name: (pl.String() if c.dtype == tables.DECIMAL else c.dtype)
        for c in tables.ORDER_EVENTS
        if c.name not in ("eventAt", "notionalUsd")
    }
)
"""``trader_orders`` documents as read: decimals are still the exchange's strings."""


def normalize_order_events(raw: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Type raw ``trader_orders`` documents into the ``order_events`` schema, sorted by time."""
    lf = raw.lazy().with_columns(
        [pl.col(c).cast(tables.DECIMAL) for c in ("limitPx", "sz", "origSz", "triggerPx", "prevSz", "prevLimitPx")]
    )
    lf = lf.with_columns(
        eventAt=pl.coalesce("observedAt", "createdAt"),
        notionalUsd=pl.col("sz").cast(pl.Float64) * pl.col("limitPx").cast(pl.Float64),
        dex=dex_expr(),
    )
    return (
        tables.conform(lf, tables.ORDER_EVENTS).sort(["eventAt", "ethAddress", "oid", "seq"], nulls_last=True).collect()
    )


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
    lf, start, _ = events_until(events, day)
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
