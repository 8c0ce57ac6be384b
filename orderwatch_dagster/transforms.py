"""Pure polars transforms: order events (and fills) in, analysis tables out. No I/O.

Every public function takes the events (a ``pl.LazyFrame`` or ``pl.DataFrame`` in the
``order_events`` schema, see :mod:`orderwatch_dagster.tables`), the UTC day ``YYYY-MM-DD`` and
its parameters (the lifecycles and the daily stats also the ``fills`` table: fills before the
day's end count), and returns a ``pl.DataFrame`` in the table's schema. Events may include any
history before the day (needed for orders that span days); events after the day's end are
ignored. All work is vectorized polars expressions, so the same functions run on a day of
MongoDB documents or on a whole Parquet history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from collector_service import schema
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

BOOK = [name for name, _, _ in tables.BOOK_COLUMNS]
"""The order-book context columns of new/updated events (``schema.BOOK_FIELDS``)."""

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


def dex_expr(dex: pl.Expr | str = "dex", coin: pl.Expr | str = "coin") -> pl.Expr:
    """``dex`` as stored, else derived from the coin like :func:`collector_service.schema.dex_of`:
    the part before ``:`` when the coin has one (``xyz:TSLA`` -> ``xyz``), else ``""``.

    Documents (and Parquet partitions) written before ``dex`` existed lack it.
    """
    coin = pl.col(coin) if isinstance(coin, str) else coin
    dex = pl.col(dex) if isinstance(dex, str) else dex
    derived = coin.str.extract(r"^([^:]*):", 1).fill_null(pl.lit(schema.MAIN_DEX))
    return pl.coalesce(dex, derived)


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


# Watch-list labels ---------------------------------------------------------------------------

WATCHLIST_SCHEMA = pl.Schema({"ethAddress": pl.String(), "label": pl.String(), "tags": pl.List(pl.String())})
"""``trader_watchlist`` as the tables join it: ``_id`` (the address) renamed ``ethAddress``."""


def watchlist_frame(docs: list[dict] | None) -> pl.DataFrame:
    """``trader_watchlist`` documents (``_id`` = address, ``label``, ``tags``) as a frame with one
    row per address; traders removed from the list (``watching`` false) keep their label."""
    rows = [
        {"ethAddress": d["_id"], "label": d.get("label"), "tags": list(d.get("tags") or [])}
        for d in docs or []
        if isinstance(d.get("_id"), str)
    ]
    if not rows:
        return pl.DataFrame(schema=WATCHLIST_SCHEMA)
    return pl.DataFrame(rows, schema=WATCHLIST_SCHEMA).unique("ethAddress", keep="last")


def with_labels(lf: pl.DataFrame | pl.LazyFrame, watchlist: pl.DataFrame | None) -> pl.LazyFrame:
    """Join the watch list's ``label`` and ``tags`` by ``ethAddress`` (label null and tags empty
    for a trader the list does not name); existing ``label``/``tags`` columns are replaced."""
    wl = watchlist if watchlist is not None else pl.DataFrame(schema=WATCHLIST_SCHEMA)
    lf = lf.lazy()
    names = lf.collect_schema().names()
    lf = lf.drop([c for c in ("label", "tags") if c in names]).with_columns(pl.col("ethAddress").cast(pl.String))
    return lf.join(
        wl.lazy().select(pl.col("ethAddress").cast(pl.String), "label", "tags"), on="ethAddress", how="left"
    ).with_columns(tags=pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.String))))


def _events_until(
    events: pl.DataFrame | pl.LazyFrame, day: str | date
) -> tuple[pl.LazyFrame, datetime, datetime]:
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


# Amend chains --------------------------------------------------------------------------------

MAX_JUMPS = 64
"""Pointer-jumping rounds before giving up: each round doubles the distance a pointer covers, so
64 rounds resolve any chain; links only point to larger oids, so chains cannot loop."""


def _filled_or_rejected(final_status: pl.Expr) -> pl.Expr:
    """``outcome_expr(final_status)`` is ``filled`` or ``rejected`` (without building the string)."""
    return (final_status == "filled") | (final_status == "rejected") | final_status.str.ends_with("Rejected")


def replacement_links(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The accepted replacement links ``(ethAddress, old, new)`` among ``events`` (``ethAddress``
    Categorical).

    A modify is a cancel-and-replace: the replacement's ``new`` event carries ``replacesOid`` and
    the replaced order's ``closed`` event ``replacedByOid``. Candidates are the union of both.
    A link is ignored when ``new <= old`` (oids grow, so it cannot be a replacement, and chains
    cannot loop) or when the old order closed ``filled`` or rejected (it cannot have been
    replaced: an inferred link can be wrong; an ``unknown`` status keeps the link). Should links
    conflict, each new order keeps its largest old one, then each old order its smallest new one,
    so that every order has at most one predecessor and one successor: chains are paths.
    """
    action = pl.col("action")
    not_replaced = (action == "closed") & _filled_or_rejected(pl.col("finalStatus"))
    linked = (
        events.lazy()
        .filter(pl.col("replacesOid").is_not_null() | pl.col("replacedByOid").is_not_null())
        .select(
            pl.col("ethAddress").cast(pl.Categorical),
            "oid",
            "action",
            "replacesOid",
            "replacedByOid",
            notReplaced_=not_replaced,
        )
        .collect()
    )
    # A replaced order's close normally carries the link (and its status) itself; the closes of
    # old orders linked from the new side only are looked up.
    one_sided = (
        linked.filter(pl.col("replacesOid").is_not_null())
        .select("ethAddress", oid=pl.col("replacesOid"))
        .join(linked.filter(action == "closed"), on=ORDER_KEY, how="anti")
    )
    rows = linked
    if not one_sided.is_empty():
        closes = (
            events.lazy()
            .filter(not_replaced & pl.col("oid").is_in(one_sided["oid"].implode()))
            .select(pl.col("ethAddress").cast(pl.Categorical), "oid", notReplaced_=pl.lit(True))
            .collect()
        )
        rows = pl.concat([linked, closes], how="diagonal")
    candidates = pl.concat(
        [
            rows.filter((action == "new") & pl.col("replacesOid").is_not_null()).select(
                "ethAddress", old=pl.col("replacesOid"), new=pl.col("oid")
            ),
            rows.filter((action == "closed") & pl.col("replacedByOid").is_not_null()).select(
                "ethAddress", old=pl.col("oid"), new=pl.col("replacedByOid")
            ),
        ]
    ).filter(pl.col("new") > pl.col("old"))
    ruled_out = rows.filter("notReplaced_").select("ethAddress", old=pl.col("oid"))
    return (
        candidates.join(ruled_out, on=["ethAddress", "old"], how="anti")
        .group_by("ethAddress", "new")
        .agg(pl.col("old").max())
        .group_by("ethAddress", "old")
        .agg(pl.col("new").min())
        .select("ethAddress", "old", "new")
    )


def chain_members(links: pl.DataFrame) -> pl.DataFrame:
    """Every order on an amend chain: ``ethAddress, oid, prevOid`` (null for the root), ``rootOid``
    (``ethAddress`` typed as in ``links``, which must be :func:`replacement_links`' paths).

    Orders on no chain are not listed: their root is themselves. Roots are found by pointer
    jumping over the links' row numbers: link i points at the link that placed its old order
    (else at itself), then ``pointer = pointer[pointer]`` (one gather) until nothing changes, so a
    chain of n orders takes about log2(n) rounds, never a per-row Python loop.
    """
    links = links.with_row_index("i")
    up = links.join(
        links.select("ethAddress", old=pl.col("new"), j=pl.col("i")), on=["ethAddress", "old"], how="left"
    ).sort("i")
    pointer = up.select(pl.coalesce("j", "i")).to_series()
    for _ in range(MAX_JUMPS):
        jumped = pointer.gather(pointer)
        if jumped.equals(pointer):
            break
        pointer = jumped
    else:  # pragma: no cover - impossible while links point to larger oids
        raise RuntimeError("amend chains did not resolve")
    root = up["old"].gather(pointer)
    replaced = up.select("ethAddress", oid=pl.col("new"), prevOid=pl.col("old"), rootOid=root)
    roots = up.filter(pl.col("j").is_null()).select(
        "ethAddress", oid=pl.col("old"), prevOid=pl.lit(None, pl.Int64), rootOid=pl.col("old")
    )
    return pl.concat([roots, replaced])


# order_lifecycles ----------------------------------------------------------------------------


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
    ``watchlist`` (:func:`watchlist_frame`) gives ``label`` and ``tags``.
    """
    lc = _lifecycles_lazy(events, day, fills=fills).pipe(with_labels, watchlist)
    return lc.pipe(tables.conform, tables.ORDER_LIFECYCLES).sort(["ethAddress", "rootOid"]).collect()


FILL_INPUTS = ("ethAddress", "oid", "time", "coin", "side", "sz", "notionalUsd", "feeUsd", "isMaker", "closedPnl")
"""The ``fills`` columns the lifecycles and stats read (plus ``source``)."""


def _fills_until(fills: pl.DataFrame | pl.LazyFrame | None, end: datetime) -> pl.DataFrame:
    """The fills before ``end`` with the columns the lifecycles use (empty when ``None``)."""
    cols = [*FILL_INPUTS, "source"]
    if fills is None:
        return pl.DataFrame(schema={c: tables.schema(tables.FILLS)[c] for c in cols})
    return fills.lazy().filter(pl.col("time") < end).select(cols).collect()


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


def _per_order(lf: pl.LazyFrame, keep: pl.Expr) -> pl.LazyFrame:
    """One row per ``(ethAddress, oid)`` that ``keep`` keeps: the order's own lifecycle, before
    chains are joined. Strings stay Categorical (the caller casts what it returns)."""
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
        agg.filter(keep)
        .with_columns(
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


def _lifecycles_lazy(
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
    lf, start, end = _events_until(events, day)
    if members is None:
        members = chain_members(replacement_links(lf))
    members = members.with_columns(pl.col("ethAddress").cast(pl.Categorical))
    open_or_today = pl.col("closedAt").is_null() | (pl.col("closedAt") >= start)
    # Only orders that can show up: open or closed that day, or on a chain (whose last order
    # decides). Chain members are matched by oid alone here (a superset), by key below.
    orders = _per_order(lf, open_or_today | pl.col("oid").is_in(members["oid"].implode()))
    if eager:
        orders = orders.collect().lazy()
    # Only the chains whose last order is open or closed that day (or not seen yet) show up.
    last = members.lazy().group_by("ethAddress", "rootOid").agg(oid=pl.col("oid").max())
    gone = last.join(orders.filter(~open_or_today).select(ORDER_KEY), on=ORDER_KEY, how="semi")
    current = members.lazy().join(gone.select("ethAddress", "rootOid"), on=["ethAddress", "rootOid"], how="anti")
    # Orders on no chain (most of them) are their own chain: no second aggregation. (The oid
    # test is a quick superset; the join decides the few orders it catches.)
    maybe_member = pl.col("oid").is_in(members["oid"].implode())
    singles = (
        pl.concat(
            [
                orders.filter(~maybe_member),
                orders.filter(maybe_member).join(members.lazy(), on=ORDER_KEY, how="anti"),
            ]
        )
        .filter(open_or_today)
        .with_columns(rootOid=pl.col("oid"), amendCount=pl.col("nAmends"), oids=pl.concat_list("oid"))
    )
    # Chain members, including orders known only from a link (no events yet: a leaf without
    # events keeps its chain open). A replacement counts as a price change when its new event's
    # limit price differs from the one its predecessor closed with.
    prev_px = orders.select("ethAddress", prevOid=pl.col("oid"), prevPx_=pl.col("closedPx"))
    seen_oid = pl.when(pl.col("firstSeenAt").is_not_null()).then(pl.col("oid"))
    chained = (
        current.join(orders, on=ORDER_KEY, how="left")
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
        _with_fills(lc, lf, members.with_columns(pl.col("ethAddress").cast(pl.String)), _fills_until(fills, end), start)
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
    per_chain = (
        fills.lazy()
        .join(chains, on=ORDER_KEY, how="left")
        .with_columns(rootOid=pl.coalesce("rootOid", "oid"))
        .group_by("ethAddress", "rootOid")
        .agg(**_fill_aggs())
    )
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
    min_change_vs_book_1pct: float | None = None
    """When set, also alert (``large_vs_book``) on a new or updated event whose ``|changeVsBook1pct|``
    (the notional change over the book's depth within 1 % of mid on the order's side) is at least
    this; ``None`` (the default): off."""


def large_change_alerts(
    events: pl.DataFrame | pl.LazyFrame,
    day: str | date,
    params: AlertThresholds = AlertThresholds(),
    watchlist: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The day's events worth a look: large new orders, large notional changes, large closes.

    A modify is a cancel-and-replace. The replacement's ``new`` event is judged like an update
    against the replaced order's last notional (sz x limitPx of its last state); the replaced
    order's ``closed`` event is not a close. A replacement whose replaced order was never seen
    is judged as a new order (there is nothing to compare with). Links are those of
    :func:`replacement_links`.

    ``changeVsBook1pct`` is ``changeUsd`` over the event's ``bookDepth1pctUsd`` (null without a
    book; closes have none); ``params.min_change_vs_book_1pct`` turns on ``large_vs_book``.

    ``watchlist`` (:func:`watchlist_frame`) gives ``label`` and ``tags``; the message names the
    trader as ``<address> (<label>)`` when the list labels it.

    This is the one definition of an alert: the daily asset runs it on the Parquet history, the
    fast alert sensor on the new events plus the history of the orders they touch.
    """
    lf, start, _ = _events_until(events, day)
    lf = lf.with_columns(pl.col("ethAddress").cast(pl.Categorical))
    touched = lf.filter(pl.col("eventAt") >= start).select(ORDER_KEY).unique()
    all_links = replacement_links(lf).lazy()
    # The replacements placed that day (touched) and the orders they replaced; the closes of
    # replaced orders are no closes of the logical order.
    links = all_links.join(touched, left_on=["ethAddress", "new"], right_on=ORDER_KEY, how="semi").collect()
    olds = links.lazy().select("ethAddress", oid=pl.col("old"))
    replaced = all_links.join(touched, left_on=["ethAddress", "old"], right_on=ORDER_KEY, how="semi").select(
        "ethAddress", oid=pl.col("old"), replacedClose_=pl.lit(True)
    )
    is_closed = pl.col("action") == "closed"
    order = _event_order()
    # A replaced order's last notional: its last open state, else its close. (The oid filter is
    # a quick superset of the exact join.)
    replaced_last = (
        lf.filter(pl.col("oid").is_in(links["old"].implode()))
        .join(olds, on=ORDER_KEY, how="semi")
        .group_by(ORDER_KEY)
        .agg(
            lastNotional_=pl.coalesce(
                pl.col("notionalUsd").max_by(pl.when(~is_closed).then(order)),
                pl.col("notionalUsd").max_by(order),
            )
        )
    )
    replacements = (
        links.lazy()
        .select("ethAddress", oid=pl.col("new"), replacedOid_=pl.col("old"))
        .join(replaced_last.rename({"oid": "replacedOid_"}), on=["ethAddress", "replacedOid_"], how="left")
    )
    link_info = replacements.join(replaced, on=ORDER_KEY, how="full", coalesce=True)
    f64 = pl.Float64
    prev_notional = pl.col("notionalUsd").shift(1).over(ORDER_KEY, order_by=order)
    action = pl.col("action")
    is_new = action == "new"
    # Before / after as for events of a single order; a replacement's new event is fixed below.
    generic_before = (
        pl.when(is_new)
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
    after = pl.when(is_closed).then(pl.lit(0.0)).otherwise(pl.col("notionalUsd"))
    thr = params.threshold_usd
    b, a = pl.col("notionalBeforeUsd"), pl.col("notionalAfterUsd")
    # An event can raise an alert only if a notional involved reaches the lower of the two
    # amounts, or if it is a replacement (compared with the order it replaced): the rest is
    # dropped before the link columns are joined.
    lowest = min(thr, params.min_change_usd)
    maybe = (pl.max_horizontal(a, b) >= lowest) | (is_new & pl.col("oid").is_in(links["new"].implode()))
    vs_book = params.min_change_vs_book_1pct
    depth = pl.col("bookDepth1pctUsd")
    if vs_book is not None:
        maybe = maybe | (depth > 0)
    known_replacement = is_new & pl.col("lastNotional_").is_not_null()
    update_like = (action == "updated") | known_replacement
    change = (a - b).abs()
    change_vs_book = pl.when(depth > 0).then((a - b) / depth)
    reasons = [
        pl.when(is_new & ~known_replacement & (a >= thr)).then(pl.lit("large_order")),
        pl.when(update_like & (b < thr) & (a >= thr)).then(pl.lit("crossed_threshold")),
        pl.when(update_like & (change > params.min_change_usd) & (change > params.min_change_share * b)).then(
            pl.lit("large_change")
        ),
        pl.when(is_closed & ~pl.col("replacedClose_").fill_null(False) & (b >= thr)).then(pl.lit("large_close")),
    ]
    if vs_book is not None:
        reasons.append(pl.when(change_vs_book.abs() >= vs_book).then(pl.lit("large_vs_book")))
    replacement = is_new & pl.col("replacedOid_").is_not_null()
    what = pl.when(replacement).then(pl.format("new (replaces oid {})", "replacedOid_")).otherwise(action)
    who = pl.when(pl.col("label").is_not_null()).then(pl.format("{} ({})", "ethAddress", "label"))
    out = (
        lf.join(touched, on=ORDER_KEY, how="semi")
        .with_columns(notionalBeforeUsd=generic_before, notionalAfterUsd=after)
        .filter((pl.col("eventAt") >= start) & maybe)
        .join(link_info, on=ORDER_KEY, how="left")
        .with_columns(notionalBeforeUsd=pl.when(known_replacement).then(pl.col("lastNotional_")).otherwise(b))
        .with_columns(reason=pl.concat_str(reasons, separator=",", ignore_nulls=True))
        .filter(pl.col("reason").is_not_null() & (pl.col("reason") != ""))
        .with_columns(
            alertKey=pl.concat_str(
                [pl.col("ethAddress"), pl.col("oid").cast(pl.String), pl.col("eventKey")], separator=":"
            ),
            dex=dex_expr(),
            replacesOid=pl.when(replacement).then(pl.col("replacedOid_")),
            changeUsd=a - b,
            changeVsBook1pct=change_vs_book,
        )
        .pipe(with_labels, watchlist)
        .with_columns(
            message=pl.format(
                "{} {} {} oid {} {}: {} notional {} -> {} USD",
                who.otherwise(pl.col("ethAddress").cast(pl.String)),
                "side",
                "coin",
                "oid",
                what,
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
        .with_columns(placedAt=pl.coalesce("placedAt_", "firstSeenAt_"), lastEventAt=pl.col("eventAt"), dex=dex_expr())
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
        .with_columns(side=pl.when(pl.col("szi") > 0).then(pl.lit("long")).otherwise(pl.lit("short")), dex=dex_expr())
    )
    return last.pipe(tables.conform, tables.POSITIONS_SNAPSHOT).sort(["ethAddress", "coin"]).collect()


# trader_daily_stats --------------------------------------------------------------------------


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
    lf, start, end = _events_until(events, day)
    members = chain_members(replacement_links(lf))
    if lifecycles is None:
        lc = _lifecycles_lazy(lf, day, members, eager=False, fills=fills, books=False)
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
    day_fills = _fills_until(fills, end).lazy().filter(pl.col("time") >= start)
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


def duplicate_fill_keys(fills: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """``(ethAddress, oid, tid)`` keys that occur more than once, with counts (one fill each)."""
    return fills.lazy().group_by(FILL_KEY).agg(count=pl.len()).filter(pl.col("count") > 1).sort(FILL_KEY).collect()


def unseen_fill_orders(
    events: pl.DataFrame | pl.LazyFrame, fills: pl.DataFrame | pl.LazyFrame, day: str | date
) -> pl.DataFrame:
    """The orders of the day's fills that no order event knows by the day's end (no event of its
    own, and on no amend chain, as in :func:`order_lifecycles`): ``ethAddress, oid, coin, fills,
    sz, notionalUsd, takerOnly`` (every fill crossed: an order that filled on arrival and never
    rested, e.g. an IOC; a maker fill means it rested on the book, so a snapshot missed it)."""
    lf, start, end = _events_until(events, day)
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
