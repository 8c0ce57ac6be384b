"""What every table's transform shares: the order key, an order's dex, the watch-list labels, the
events up to a day's end and the order of an order's events, and an order's outcome from its
final status.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from collector_service import schema
from orderwatch_dagster.partitions import day_bounds

ORDER_KEY = ["ethAddress", "oid"]


def dex_expr(dex: pl.Expr | str = "dex", coin: pl.Expr | str = "coin") -> pl.Expr:
    """``dex`` as stored, else derived from the coin like :func:`collector_service.schema.dex_of`:
    the part before ``:`` when the coin has one (``xyz:TSLA`` -> ``xyz``), else ``""``.

    Documents (and Parquet partitions) written before ``dex`` existed lack it.
    """
    coin = pl.col(coin) if isinstance(coin, str) else coin
    dex = pl.col(dex) if isinstance(dex, str) else dex
    derived = coin.str.extract(r"^([^:]*):", 1).fill_null(pl.lit(schema.MAIN_DEX))
    return pl.coalesce(dex, derived)


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


def events_until(
    events: pl.DataFrame | pl.LazyFrame, day: str | date
) -> tuple[pl.LazyFrame, datetime, datetime]:
    start, end = day_bounds(day)
    return events.lazy().filter(pl.col("eventAt") < end), start, end


def event_order() -> pl.Expr:
    """One Int128 per event that orders an order's events: ``seq`` (null last), then time.

    The aggregations pick an order's first / last events with ``min_by`` / ``max_by`` of this key
    instead of sorting the whole history (a multi-column sort that moves every column was most of
    the transforms' time). ``eventAt`` is never null here: ``events_until`` drops null times.
    """
    seq = pl.col("seq").fill_null(pl.Int64.max()).cast(pl.Int128)
    return seq * (1 << 64) + pl.col("eventAt").dt.epoch("us").cast(pl.Int128)


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
