"""The ``trader_daily_stats`` table: per trader, the day's behaviour (placed / amended / filled /
canceled logical orders, timings, notional) and what the day's fills traded.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.transforms.chains import chain_members, replacement_links
from orderwatch_dagster.transforms.common import ORDER_KEY, events_until, with_labels
from orderwatch_dagster.transforms.fills import fills_until
from orderwatch_dagster.transforms.lifecycles import lifecycles_lazy


def trader_daily_stats(
    events: pl.DataFrame | pl.LazyFrame,
    day: str | date,
    lifecycles: pl.DataFrame | pl.LazyFrame | None = None,
    fills: pl.DataFrame | pl.LazyFrame | None = None,
    watchlist: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per trader, the day's behaviour: placed / amended / filled / canceled, timings, notional,
    and what the day's fills traded.

    Counts of orders are counts of logical orders (amend chains): a replaced order is an amend,
    not a cancel; orders known only from their fills are counted apart (``ordersFilledUnseen``).
    ``lifecycles`` (that day's ``order_lifecycles``) is computed from ``events`` and ``fills``
    when not given. ``fills`` (the ``fills`` table; only the day's are used) may be ``None``: no
    fills.
    """
    lf, start, end = events_until(events, day)
    members = chain_members(replacement_links(lf))
    if lifecycles is None:
        lc = lifecycles_lazy(lf, day, members, eager=False, fills=fills, books=False)
    else:
        lc = lifecycles.lazy()
    today = lf.filter(pl.col("eventAt") >= start).with_columns(pl.col("ethAddress").cast(pl.Categorical))
    action = pl.col("action")
    replacement = pl.col("prevOid").is_not_null()
    fresh = (action == "new") & ~replacement
    amend = ((action == "new") & replacement) | ((action == "updated") & ~pl.col("partialFill").fill_null(False))
    by_events = (
        today.join(members.lazy().with_columns(pl.col("ethAddress").cast(pl.Categorical)), on=ORDER_KEY, how="left")
        .group_by("ethAddress")
        .agg(
            nEvents=pl.len(),
            ordersPlaced=fresh.sum(),
            ordersAmended=pl.coalesce("rootOid", "oid").filter(amend).n_unique(),
            amends=amend.sum(),
            notionalPlacedUsd=pl.col("notionalUsd").filter(fresh).sum(),
            coinsTraded=pl.col("coin").n_unique(),
            coins=pl.col("coin").unique().sort(),
        )
        .with_columns(pl.col("ethAddress").cast(pl.String))
    )
    outcome = pl.col("outcome")
    seen = pl.col("seenInEvents").fill_null(True)
    closed_today = (pl.col("closedAt") >= start) & seen
    first_fill_today = (pl.col("firstFillAt") >= start) & seen
    by_orders = lc.group_by("ethAddress").agg(
        ordersFilled=(closed_today & (outcome == "filled")).sum(),
        ordersCanceled=(closed_today & (outcome == "canceled")).sum(),
        ordersRejected=(closed_today & (outcome == "rejected")).sum(),
        openOrdersAtEnd=(seen & (outcome == "open")).sum(),
        ordersFilledUnseen=(~seen & (pl.col("closedAt") >= start)).sum(),
        medianTimeToFillS=pl.col("durationS").filter(closed_today & (outcome == "filled")).median(),
        medianTimeToCancelS=pl.col("durationS").filter(closed_today & (outcome == "canceled")).median(),
        medianTimeToFirstFillS=(
            (pl.col("firstFillAt") - pl.col("placedAt")).dt.total_microseconds().filter(first_fill_today) / 1e6
        ).median(),
    )
    day_fills = fills_until(fills, end).lazy().filter(pl.col("time") >= start)
    notional = pl.col("notionalUsd")
    by_fills = day_fills.group_by("ethAddress").agg(
        fills=pl.len(),
        volumeUsd=notional.sum(),
        makerRatio=notional.filter(pl.col("isMaker")).sum() / notional.sum(),
        fees=pl.col("feeUsd").sum(),
        realizedPnl=pl.col("closedPnl").sum(),
    )
    zero = pl.lit(0).cast(tables.DECIMAL)
    counts = [
        "nEvents",
        "ordersPlaced",
        "ordersAmended",
        "amends",
        "ordersFilled",
        "ordersCanceled",
        "ordersRejected",
        "openOrdersAtEnd",
        "ordersFilledUnseen",
        "coinsTraded",
        "fills",
    ]
    joined = (
        by_events.join(by_orders, on="ethAddress", how="full", coalesce=True)
        .join(by_fills, on="ethAddress", how="full", coalesce=True)
        .with_columns([pl.col(c).fill_null(0) for c in counts])
        .with_columns(
            notionalPlacedUsd=pl.col("notionalPlacedUsd").fill_null(0.0),
            volumeUsd=pl.col("volumeUsd").fill_null(0.0),
            fees=pl.col("fees").fill_null(zero),
            realizedPnl=pl.col("realizedPnl").fill_null(zero),
            coins=pl.col("coins").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            cancelRatio=pl.when(pl.col("ordersPlaced") > 0)
            .then(pl.col("ordersCanceled") / pl.col("ordersPlaced"))
            .otherwise(None),
        )
    )
    return (
        joined.pipe(with_labels, watchlist).pipe(tables.conform, tables.TRADER_DAILY_STATS).sort("ethAddress").collect()
    )
