"""The ``large_change_alerts`` table: the day's events worth a look (large new orders, large
notional changes, large closes, and optionally changes large against the book) under
:class:`AlertThresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from orderwatch_dagster import tables
from orderwatch_dagster.transforms.chains import replacement_links
from orderwatch_dagster.transforms.common import (
    ORDER_KEY,
    dex_expr,
    event_order,
    events_until,
    with_labels,
)


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
    :func:`.chains.replacement_links`.

    ``changeVsBook1pct`` is ``changeUsd`` over the event's ``bookDepth1pctUsd`` (null without a
    book; closes have none); ``params.min_change_vs_book_1pct`` turns on ``large_vs_book``.

    ``watchlist`` (:func:`.common.watchlist_frame`) gives ``label`` and ``tags``; the message names the
    trader as ``<address> (<label>)`` when the list labels it.

    This is the one definition of an alert: the daily asset runs it on the Parquet history, the
    fast alert sensor on the new events plus the history of the orders they touch.
    """
    lf, start, _ = events_until(events, day)
    lf = lf.with_columns(pl.col("ethAddress").cast(pl.Categorical))
    # the orders with an event that day, collected once: three joins below read them
    touched = lf.filter(pl.col("eventAt") >= start).select(ORDER_KEY).unique().collect().lazy()
    all_links = replacement_links(lf).lazy()
    # The replacements placed that day (touched) and the orders they replaced; the closes of
    # replaced orders are no closes of the logical order.
    links = all_links.join(touched, left_on=["ethAddress", "new"], right_on=ORDER_KEY, how="semi").collect()
    olds = links.lazy().select("ethAddress", oid=pl.col("old"))
    replaced = all_links.join(touched, left_on=["ethAddress", "old"], right_on=ORDER_KEY, how="semi").select(
        "ethAddress", oid=pl.col("old"), replacedClose_=pl.lit(True)
    )
    is_closed = pl.col("action") == "closed"
    order = event_order()
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
    told_before = pl.coalesce("prevSz", "sz").cast(f64) * pl.coalesce("prevLimitPx", "limitPx").cast(f64)
    # Before / after as for events of a single order; a replacement's new event is fixed below.
    generic_before = (
        pl.when(is_new)
        .then(pl.lit(0.0))
        .when(action == "updated")
        .then(pl.coalesce(told_before, prev_notional))
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
    # Every notional before or after is an event's notionalUsd or told_before of the same order:
    # only the touched orders with one that large, the replacements and (large_vs_book on) the
    # orders with a book can raise an alert, so the window runs on those alone (a few percent).
    could = pl.max_horizontal("notionalUsd", told_before) >= lowest
    if vs_book is not None:
        maybe = maybe | (depth > 0)
        could = could | (depth > 0)
    watched = (
        pl.concat([lf.filter(could).select(ORDER_KEY), links.lazy().select("ethAddress", oid=pl.col("new"))])
        .join(touched, on=ORDER_KEY, how="semi")
        .collect()
    )
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
        lf.filter(pl.col("oid").is_in(watched["oid"].implode()))  # a quick superset of the exact join
        .join(watched.lazy(), on=ORDER_KEY, how="semi")
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
