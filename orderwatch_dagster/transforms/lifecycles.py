"""The ``order_lifecycles`` table: one row per logical order (an amend chain) with its prices,
sizes, times, outcome, book context and what its fills traded; and its checks (fill sizes and
counts recomputed from the fills, fills that disagree with the events).
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.transforms.chains import chain_members, replacement_links
from orderwatch_dagster.transforms.common import (
    ORDER_KEY,
    dex_expr,
    event_order,
    events_until,
    outcome_expr,
    with_labels,
)
from orderwatch_dagster.transforms.fills import fills_until

BOOK = [name for name, _, _ in tables.BOOK_COLUMNS]
"""The order-book context columns of new/updated events (``schema.BOOK_FIELDS``)."""


def order_lifecycles(
    events: pl.DataFrame | pl.LazyFrame,
    day: str | date,
    fills: pl.DataFrame | pl.LazyFrame | None = None,
    watchlist: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per logical order (an amend chain, keyed by ``(ethAddress, rootOid)``) seen by the
    day's end whose last order closed that day or is still open at its end, plus one row per order
    known only from its fills whose last fill was that day.

    ``fills`` (the ``fills`` table, any history up to the day; later fills are ignored) give what
    was traded: ``filledSz``, ``avgFillPx``, fees, maker share, PnL and fill times over every
    order of the chain. Without them (``None``) nothing was traded: ``filledSz`` is 0.
    ``watchlist`` (:func:`.common.watchlist_frame`) gives ``label`` and ``tags``.
    """
    lc = lifecycles_lazy(events, day, fills=fills).pipe(with_labels, watchlist)
    return lc.pipe(tables.conform, tables.ORDER_LIFECYCLES).sort(["ethAddress", "rootOid"]).collect()


def _fill_aggs() -> dict[str, pl.Expr]:
    """What a group of fills traded (the lifecycles' fill columns)."""
    sz = pl.col("sz").cast(pl.Float64)
    return {
        "nFills": pl.len(),
        "filledSz": pl.col("sz").sum(),
        "avgFillPx": pl.col("notionalUsd").sum() / sz.sum(),
        # a USD total only when every fee was charged in USDC
        "feesUsd": pl.when(pl.col("feeUsd").is_null().any())
        .then(pl.lit(None, tables.DECIMAL))
        .otherwise(pl.col("feeUsd").sum()),
        "makerShare": sz.filter(pl.col("isMaker")).sum() / sz.sum(),
        "realizedPnl": pl.col("closedPnl").sum(),
        "firstFillAt": pl.col("time").min(),
        "lastFillAt": pl.col("time").max(),
    }


FILL_COLUMNS = list(_fill_aggs())


def _per_order(lf: pl.LazyFrame) -> pl.LazyFrame:
    """One row per ``(ethAddress, oid)`` of ``lf``: the order's own lifecycle, before chains are
    joined. Strings stay Categorical (the caller casts what it returns)."""
    is_closed = pl.col("action") == "closed"
    is_update = pl.col("action") == "updated"
    order = event_order()
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
        "limitPx",
        "notionalUsd",
        order_=order,
        closedOrder_=pl.when(is_closed).then(order),
        openOrder_=pl.when(~is_closed).then(order),
        origSzOrder_=pl.when(pl.col("origSz").is_not_null()).then(order),
        closedAt_=pl.when(is_closed).then(pl.col("eventAt")),
        newPx_=pl.when(pl.col("action") == "new").then(pl.col("limitPx")),
        closedPx_=pl.when(is_closed).then(pl.col("limitPx")),
        update_=is_update,
        amend_=is_update & ~pl.col("partialFill").fill_null(False),
        priceChange_=is_update & pl.col("changes").list.contains("limitPx"),
        partial_=pl.when(pl.col("partialFill")).then(pl.col("prevSz") - pl.col("sz")),
        rest_=pl.col("source") == "rest",
    )
    agg = per_event.group_by(ORDER_KEY).agg(
        coin=pl.col("coin").max_by("order_"),
        side=pl.col("side").max_by("order_"),
        orderType=pl.col("orderType").max_by("order_"),
        parentOid=pl.col("parentOid").max(),
        placedAt=pl.col("timestamp").min(),
        firstSeenAt=pl.col("eventAt").min(),
        closedAt=pl.col("closedAt_").max(),
        finalStatus=pl.col("finalStatus").max_by("closedOrder_"),
        nUpdates=pl.col("update_").sum(),
        nAmends=pl.col("amend_").sum(),
        nPriceChanges=pl.col("priceChange_").sum(),
        origSz=pl.col("origSz").min_by("origSzOrder_"),
        lastOpenSz=pl.col("sz").max_by("openOrder_"),
        closedSz=pl.col("sz").max_by("closedOrder_"),
        # one new and one close per order (the unique-keys check): their limit prices
        newPx=pl.col("newPx_").max(),
        closedPx=pl.col("closedPx_").max(),
        partialSz=pl.col("partial_").sum(),
        maxNotionalUsd=pl.col("notionalUsd").max(),
        recovered=pl.col("rest_").any(),
    )
    zero = pl.lit(0).cast(tables.DECIMAL)
    return (
        agg.with_columns(
            placedAt=pl.coalesce("placedAt", "firstSeenAt"),
            lastSz=pl.coalesce("lastOpenSz", "closedSz"),
            outcome=outcome_expr(pl.col("finalStatus").cast(pl.String)),
            partialSz=pl.col("partialSz").fill_null(zero),
        )
        .with_columns(
            filledSzEvents=pl.when(pl.col("outcome") == "filled")
            # A fill removes the order without a last size decrease: the remainder was filled
            # (REST reports a filled order's sz as 0: then everything not yet counted was).
            .then(
                pl.col("partialSz")
                + pl.when(pl.col("lastSz") > zero)
                .then(pl.col("lastSz"))
                .otherwise(pl.col("origSz") - pl.col("partialSz"))
            )
            .otherwise(pl.col("partialSz")),
        )
    )


def _order_id(traders: pl.Enum) -> pl.Expr:
    """``ORDER_KEY`` as one integer, the trader by its place in ``traders`` (null for another
    trader): a set of them is a quicker filter than an anti-join on the two columns (2.4M events:
    about a quarter of the CPU). An Enum, not a Categorical: its codes are fixed by its categories,
    not by what else the process has cast."""
    trader = pl.col("ethAddress").cast(traders, strict=False).to_physical().cast(pl.Int128)
    return trader * (1 << 64) + pl.col("oid")


def lifecycles_lazy(
    events: pl.DataFrame | pl.LazyFrame,
    day: str | date,
    members: pl.DataFrame | None = None,
    *,
    eager: bool = True,
    fills: pl.DataFrame | pl.LazyFrame | None = None,
    books: bool = True,
) -> pl.LazyFrame:
    """The lifecycles query; ``members`` when the caller has them. ``eager`` collects the per-order
    aggregation before the three queries that use it (faster for the whole table); left lazy,
    polars computes it once and prunes the aggregations a caller does not need. ``books=False``
    leaves the book context null (a caller that does not need it saves a join)."""
    lf, start, end = events_until(events, day)
    if members is None:
        members = chain_members(replacement_links(lf))
    members = members.with_columns(pl.col("ethAddress").cast(pl.Categorical))
    # Orders closed before the day (every close of theirs) show up only on a chain whose last
    # order (its largest oid) is open or closed that day: their events are dropped before the
    # per-order aggregation, which then sees the few orders that can show up.
    closes = lf.filter(pl.col("action") == "closed").select(
        pl.col("ethAddress").cast(pl.Categorical), "oid", today_=pl.col("eventAt") >= start
    )
    # (Both collected: every query below uses them.)
    closed_before = closes.filter(~pl.col("today_")).join(closes.filter("today_"), on=ORDER_KEY, how="anti").collect()
    last = members.group_by("ethAddress", "rootOid").agg(oid=pl.col("oid").max())
    gone = last.join(closed_before, on=ORDER_KEY, how="semi")
    current = members.join(gone.select("ethAddress", "rootOid"), on=["ethAddress", "rootOid"], how="anti")
    dropped = closed_before.join(current, on=ORDER_KEY, how="anti")
    order_id = _order_id(pl.Enum(dropped["ethAddress"].cast(pl.String).unique()))
    dropped_ids = dropped.select(order_id).to_series().implode()
    orders = _per_order(lf.filter(~order_id.is_in(dropped_ids).fill_null(False)))
    if eager:
        orders = orders.collect().lazy()
    # Orders on no chain (most of them) are their own chain: no second aggregation.
    singles = orders.join(members.lazy(), on=ORDER_KEY, how="anti").with_columns(
        rootOid=pl.col("oid"), amendCount=pl.col("nAmends"), oids=pl.concat_list("oid")
    )
    # Chain members, including orders known only from a link (no events yet: a leaf without
    # events keeps its chain open). A replacement counts as a price change when its new event's
    # limit price differs from the one its predecessor closed with.
    prev_px = orders.select("ethAddress", prevOid=pl.col("oid"), prevPx_=pl.col("closedPx"))
    seen_oid = pl.when(pl.col("firstSeenAt").is_not_null()).then(pl.col("oid"))
    chained = (
        current.lazy().join(orders, on=ORDER_KEY, how="left")
        .join(prev_px, on=["ethAddress", "prevOid"], how="left")
        .with_columns(
            seenOid_=seen_oid,
            repriced_=(pl.col("prevOid").is_not_null() & (pl.col("newPx") != pl.col("prevPx_"))).fill_null(False),
        )
        .group_by("ethAddress", "rootOid")
        .agg(
            # The chain's last order is its largest oid (links only point to larger oids).
            oid=pl.col("oid").max(),
            closedAt=pl.col("closedAt").max_by("oid"),
            finalStatus=pl.col("finalStatus").max_by("oid"),
            outcome=pl.col("outcome").max_by("oid"),
            lastSz=pl.col("lastSz").max_by("oid"),
            coin=pl.col("coin").max_by("seenOid_"),
            side=pl.col("side").max_by("seenOid_"),
            orderType=pl.col("orderType").max_by("seenOid_"),
            placedAt=pl.col("placedAt").min_by("seenOid_"),
            origSz=pl.col("origSz").min_by("seenOid_"),
            parentOid=pl.col("parentOid").max(),
            firstSeenAt=pl.col("firstSeenAt").min(),
            amendCount=pl.len() - 1 + pl.col("nAmends").sum(),
            nUpdates=pl.col("nUpdates").sum(),
            nPriceChanges=pl.col("nPriceChanges").sum() + pl.col("repriced_").sum(),
            # Only the last order can have filled (a link from a filled order is ignored).
            filledSzEvents=pl.col("filledSzEvents").sum(),
            maxNotionalUsd=pl.col("maxNotionalUsd").max(),
            recovered=pl.col("recovered").any(),
            oids=pl.col("oid").sort(),
        )
        .with_columns(outcome=pl.col("outcome").fill_null(pl.lit("open")))
    )
    derived = ("dex", "durationS", "seenInEvents", "label", "tags", *FILL_COLUMNS, *BOOK)
    cols = [c.name for c in tables.ORDER_LIFECYCLES if c.name not in derived]
    lc = (
        pl.concat([singles.select(cols), chained.select(cols)], how="vertical_relaxed")
        .with_columns(pl.col(pl.Categorical).cast(pl.String))
        .with_columns(seenInEvents=pl.lit(True))
    )
    if eager:
        lc = lc.collect().lazy()
    # The book when the logical order was placed: the root's new event's. Joined rather than
    # aggregated per order: only new events carry a book, and only the roots shown need one.
    if books:
        has_book = pl.any_horizontal([pl.col(f).is_not_null() for f in BOOK])
        book_rows = (
            lf.filter((pl.col("action") == "new") & has_book)
            .select(*ORDER_KEY, *BOOK)
            .join(lc.select("ethAddress", oid=pl.col("rootOid")), on=ORDER_KEY, how="semi")
            .unique(ORDER_KEY, keep="any")  # one new event per order (the unique-keys check)
            .rename({"oid": "rootOid"})
        )
        lc = lc.join(book_rows, on=["ethAddress", "rootOid"], how="left")
    else:
        lc = lc.with_columns([pl.lit(None, dtype).alias(name) for name, dtype, _ in tables.BOOK_COLUMNS])
    return (
        _with_fills(lc, lf, members.with_columns(pl.col("ethAddress").cast(pl.String)), fills_until(fills, end), start)
        .with_columns(
            # the contract's dex_of(coin): what the collector stores, and the fallback for old data
            dex=dex_expr(pl.lit(None, pl.String)),
            durationS=(pl.coalesce("closedAt", pl.lit(end)) - pl.col("placedAt")).dt.total_microseconds() / 1e6,
            label=pl.lit(None, pl.String),
            tags=pl.lit([], dtype=pl.List(pl.String)),
        )
        .pipe(tables.conform, tables.ORDER_LIFECYCLES)
    )


def _with_fills(
    lc: pl.LazyFrame, events: pl.LazyFrame, members: pl.DataFrame, fills: pl.DataFrame, start: datetime
) -> pl.LazyFrame:
    """The lifecycles with what their chains traded, plus the orders known only from fills.

    A fill belongs to the chain of its order (``members``; an order on no chain is its own). An
    order with fills but no event up to the day's end traded without ever resting in a snapshot
    (an IOC or market order that filled on arrival): it gets a row of its own on the day of its
    last fill, placed and closed at its first and last fill, ``outcome`` filled.
    """
    zero = pl.lit(0).cast(tables.DECIMAL)
    if fills.is_empty():
        return lc.with_columns(
            nFills=pl.lit(0, pl.UInt32),
            filledSz=zero,
            avgFillPx=pl.lit(None, pl.Float64),
            feesUsd=zero,
            makerShare=pl.lit(None, pl.Float64),
            realizedPnl=zero,
            firstFillAt=pl.lit(None, tables.UTC_TS),
            lastFillAt=pl.lit(None, tables.UTC_TS),
        )
    chains = members.lazy().select(*ORDER_KEY, "rootOid")
    # Only the fills of the chains shown (each order is on one chain: its ``oids``) are
    # aggregated, not the whole history's.
    shown = lc.select("ethAddress", "rootOid", oid=pl.col("oids")).explode("oid")
    per_chain = fills.lazy().join(shown, on=ORDER_KEY).group_by("ethAddress", "rootOid").agg(**_fill_aggs())
    traded = (
        lc.join(per_chain, on=["ethAddress", "rootOid"], how="left")
        .with_columns(
            # no fill joined: nothing traded (a chain whose fees were in another token keeps its null)
            [
                pl.when(pl.col("nFills").is_null()).then(zero).otherwise(pl.col(c)).alias(c)
                for c in ("filledSz", "feesUsd", "realizedPnl")
            ]
        )
        .with_columns(nFills=pl.col("nFills").fill_null(0))
    )
    # Orders with fills and no event (nor a link naming them) by the day's end. Only an order
    # with a fill that day can have its last fill that day.
    today = fills.filter(pl.col("time") >= start)
    seen = events.filter(pl.col("oid").is_in(today["oid"].unique().implode())).select(*ORDER_KEY).unique()
    unseen = (
        fills.lazy()
        .join(today.lazy().select(*ORDER_KEY).unique(), on=ORDER_KEY, how="semi")
        .join(seen, on=ORDER_KEY, how="anti")
        .join(chains, on=ORDER_KEY, how="anti")
        .group_by(ORDER_KEY)
        .agg(
            coin=pl.col("coin").min_by("time"),
            side=pl.col("side").min_by("time"),
            recovered=(pl.col("source") == "rest").any(),
            **_fill_aggs(),
        )
        .filter(pl.col("lastFillAt") >= start)
        .with_columns(
            rootOid=pl.col("oid"),
            placedAt=pl.col("firstFillAt"),
            closedAt=pl.col("lastFillAt"),
            outcome=pl.lit("filled"),
            amendCount=pl.lit(0, pl.UInt32),
            nUpdates=pl.lit(0, pl.UInt32),
            nPriceChanges=pl.lit(0, pl.UInt32),
            seenInEvents=pl.lit(False),
            oids=pl.concat_list("oid"),
        )
    )
    return pl.concat([traded, unseen], how="diagonal_relaxed")


def lifecycle_fill_mismatches(
    lifecycles: pl.DataFrame | pl.LazyFrame, fills: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """Lifecycle rows whose ``filledSz`` or ``nFills`` differ from their chain's fills summed anew:
    ``fills`` (the table up to the day) per ``(ethAddress, oid)``, joined to each row's ``oids``.

    Independent of how :func:`order_lifecycles` maps fills to chains: it checks that every fill of
    every order of the chain (and no other) was counted once."""
    per_order = fills.lazy().group_by(ORDER_KEY).agg(sz_=pl.col("sz").sum(), n_=pl.len())
    zero = pl.lit(0).cast(tables.DECIMAL)
    recomputed = (
        lifecycles.lazy()
        .select("ethAddress", "rootOid", oid=pl.col("oids"))
        .explode("oid")
        .join(per_order, on=ORDER_KEY, how="left")
        .group_by("ethAddress", "rootOid")
        .agg(fillsSz=pl.col("sz_").sum(), fills=pl.col("n_").sum())
    )
    return (
        lifecycles.lazy()
        .select("ethAddress", "rootOid", "oid", "filledSz", "nFills")
        .join(recomputed, on=["ethAddress", "rootOid"], how="left")
        .with_columns(fillsSz=pl.col("fillsSz").fill_null(zero), fills=pl.col("fills").fill_null(0))
        .filter((pl.col("filledSz") != pl.col("fillsSz")) | (pl.col("nFills") != pl.col("fills")))
        .sort("ethAddress", "rootOid")
        .collect()
    )


def fills_disagree_with_events(lifecycles: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Chains seen in events whose size traded (fills) differs from what their events tell
    (``filledSz`` vs ``filledSzEvents``)."""
    return (
        lifecycles.lazy()
        .filter(pl.col("seenInEvents") & (pl.col("filledSz") != pl.col("filledSzEvents")))
        .select("ethAddress", "rootOid", "oid", "outcome", "filledSz", "filledSzEvents")
        .sort("ethAddress", "rootOid")
        .collect()
    )
