"""The ``fills`` table: ``trader_fills`` documents as read normalized to its schema (notional, maker
flag, USD fee, liquidation fields), the fills before a day's end as the lifecycles and stats read
them, and its checks (duplicate ``(ethAddress, oid, tid)`` keys, fills of orders no event knows).
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.transforms.chains import chain_members, replacement_links
from orderwatch_dagster.transforms.common import ORDER_KEY, dex_expr, events_until

FILL_KEY = ["ethAddress", "oid", "tid"]


USD_FEE_TOKEN = "USDC"
"""Fees in this token are USD amounts (``feeUsd``); fees in other tokens are not converted."""


LIQUIDATION = pl.Struct({"liquidatedUser": pl.String(), "markPx": pl.String(), "method": pl.String()})


FILL_DERIVED = ("notionalUsd", "isMaker", "feeUsd", "liquidatedUser", "liquidationMarkPx", "liquidationMethod")


RAW_FILL_SCHEMA = pl.Schema(
    {
        c.name: (pl.String() if c.dtype == tables.DECIMAL else c.dtype)
        for c in tables.FILLS
        if c.name not in FILL_DERIVED
    }
    | {"liquidation": LIQUIDATION}
)
"""``trader_fills`` documents as read: decimals are still the exchange's strings, ``liquidation``
the exchange's object (present on liquidation fills only)."""


def normalize_fills(raw: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Type raw ``trader_fills`` documents into the ``fills`` schema, sorted by time.

    ``notionalUsd`` is px x sz; ``isMaker`` is ``not crossed``; ``feeUsd`` is the fee when it was
    charged in USDC and null otherwise (a spot buy pays in the bought token: no price is at hand
    to convert it honestly).
    """
    decimals = [c.name for c in tables.FILLS if c.dtype == tables.DECIMAL and c.name in RAW_FILL_SCHEMA]
    liquidation = pl.col("liquidation").struct
    lf = raw.lazy().with_columns([pl.col(c).cast(tables.DECIMAL) for c in decimals])
    lf = lf.with_columns(
        notionalUsd=pl.col("px").cast(pl.Float64) * pl.col("sz").cast(pl.Float64),
        isMaker=~pl.col("crossed"),
        feeUsd=pl.when(pl.col("feeToken") == USD_FEE_TOKEN).then(pl.col("fee")),
        dex=dex_expr(),
        liquidatedUser=liquidation.field("liquidatedUser"),
        liquidationMarkPx=liquidation.field("markPx").cast(tables.DECIMAL),
        liquidationMethod=liquidation.field("method"),
    )
    return tables.conform(lf, tables.FILLS).sort(["time", *FILL_KEY], nulls_last=True).collect()


FILL_INPUTS = ("ethAddress", "oid", "time", "coin", "side", "sz", "notionalUsd", "feeUsd", "isMaker", "closedPnl")
"""The ``fills`` columns the lifecycles and stats read (plus ``source``)."""


def fills_until(fills: pl.DataFrame | pl.LazyFrame | None, end: datetime) -> pl.DataFrame:
    """The fills before ``end`` with the columns the lifecycles use (empty when ``None``)."""
    cols = [*FILL_INPUTS, "source"]
    if fills is None:
        return pl.DataFrame(schema={c: tables.schema(tables.FILLS)[c] for c in cols})
    return fills.lazy().filter(pl.col("time") < end).select(cols).collect()


def duplicate_fill_keys(fills: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """``(ethAddress, oid, tid)`` keys that occur more than once, with counts (one fill each)."""
    return fills.lazy().group_by(FILL_KEY).agg(count=pl.len()).filter(pl.col("count") > 1).sort(FILL_KEY).collect()


def unseen_fill_orders(
    events: pl.DataFrame | pl.LazyFrame, fills: pl.DataFrame | pl.LazyFrame, day: str | date
) -> pl.DataFrame:
    """The orders of the day's fills that no order event knows by the day's end (no event of its
    own, and on no amend chain, as in :func:`.lifecycles.order_lifecycles`): ``ethAddress, oid, coin, fills,
    sz, notionalUsd, takerOnly`` (every fill crossed: an order that filled on arrival and never
    rested, e.g. an IOC; a maker fill means it rested on the book, so a snapshot missed it)."""
    lf, start, end = events_until(events, day)
    day_fills = fills.lazy().filter((pl.col("time") >= start) & (pl.col("time") < end)).collect()
    if day_fills.is_empty():
        return pl.DataFrame(
            schema={
                "ethAddress": pl.String,
                "oid": pl.Int64,
                "coin": pl.String,
                "fills": pl.UInt32,
                "sz": tables.DECIMAL,
                "notionalUsd": pl.Float64,
                "takerOnly": pl.Boolean,
            }
        )
    oids = day_fills["oid"].unique().implode()
    members = chain_members(replacement_links(lf)).select(pl.col("ethAddress").cast(pl.String), "oid")
    named = pl.concat([lf.filter(pl.col("oid").is_in(oids)).select(*ORDER_KEY), members.lazy()]).unique()
    return (
        day_fills.lazy()
        .join(named, on=ORDER_KEY, how="anti")
        .group_by(ORDER_KEY)
        .agg(
            coin=pl.col("coin").first(),
            fills=pl.len(),
            sz=pl.col("sz").sum(),
            notionalUsd=pl.col("notionalUsd").sum(),
            takerOnly=pl.col("crossed").fill_null(False).all(),
        )
        .sort(ORDER_KEY)
        .collect()
    )
