"""Synthetic ``order_events`` at scale, generated with vectorized polars expressions.

Modelled on the exchange simulator's trader model: its coins and mark prices, orders 0.2-3 %
away from the mark for 20-2,000 USD, Gtc/Alo/trigger mixes, TP/SL children, amends and partial
fills as updates, closes that are mostly fills and cancels (some margin cancels and rejects), a
few orders recovered over REST, and orders that stay open across days.

Modifies are cancel-and-replace as on Hyperliquid: a quarter of the orders replace the order
before them (same trader, coin and side, placed when it closes ``canceled`` with
``replacedByOid``; the replacement's ``new`` has ``replacesOid``), so amend chains have a few
orders each, and every 50,000th order starts a market maker's chain of 300 re-quotes. A few links
are spurious (the old order ``filled``: an inferred link gone wrong) and must be ignored. The
last few coins are HIP-3 coins (``xyz:<name>``, dex ``xyz``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from exchange_sim.market import Market
from orderwatch_dagster import tables

DAY = "2026-01-15"
"""The day the transforms compute; events start two days earlier so orders span days."""
HISTORY_DAYS = 3
EVENTS_PER_ORDER = 2.6  # new + ~0.75 updates + ~0.85 closes
REPLACE_SHARE = 0.25
"""Share of orders that replace the order before them."""
LONG_CHAIN_EVERY, LONG_CHAIN = 50_000, 300
"""Every ``LONG_CHAIN_EVERY``-th order is re-quoted ``LONG_CHAIN`` times."""
SPURIOUS_SHARE = 0.03
"""Share of replaced orders that ended ``filled`` nonetheless (their link must be ignored)."""
HIP3_COINS = 4
"""The last coins get a HIP-3 name ``xyz:<name>``."""
FINAL_STATUSES = ["filled"] * 45 + ["canceled"] * 40 + ["marginCanceled"] * 3 + ["siblingFilledCanceled"] * 4 + [
    "rejected"
] * 2 + ["unknown"] * 6


def _uniform(name: str, seed: int) -> pl.Expr:
    """A per-row pseudo-random float in [0, 1) derived from column ``name`` (reproducible)."""
    return (pl.col(name).hash(seed) % 1_000_003).cast(pl.Float64) / 1_000_003


def orders_frame(
    n_orders: int, seed: int = 1, *, day: str = DAY, days: int = HISTORY_DAYS, traders: int | None = None
) -> pl.DataFrame:
    """One row per order: who, what, when and how it ends; placed over the ``days`` days up to
    ``day``, by ``traders`` traders (default: one per 400 orders, at least 50)."""
    coins = Market.load().coins[:40]
    coin_names = pl.Series([("xyz:" if k >= len(coins) - HIP3_COINS else "") + c.name for k, c in enumerate(coins)])
    marks = pl.Series([float(c.mark_px) for c in coins])
    start = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(days=days - 1)
    span_us = days * 86_400_000_000
    n_traders = traders or max(50, n_orders // 400)
    df = pl.DataFrame({"i": pl.int_range(n_orders, eager=True, dtype=pl.Int64)})
    df = df.with_columns(
        oid=pl.col("i") + 300_000_000_000,
        trader=(pl.col("i").hash(seed) % n_traders).cast(pl.Int64),
        coinIx=(pl.col("i").hash(seed + 1) % len(coins)).cast(pl.Int64),
        side=pl.when(_uniform("i", seed + 2) < 0.5).then(pl.lit("B")).otherwise(pl.lit("A")),
        away=0.002 + 0.028 * _uniform("i", seed + 3),
        # 20-2,000 USD like the simulator's traders, plus 3 % whales (up to 300k) for alerts
        usd=(20 + 1980 * _uniform("i", seed + 4))
        * pl.when(_uniform("i", seed + 16) < 0.03).then(pl.lit(150.0)).otherwise(pl.lit(1.0)),
        kind=_uniform("i", seed + 5),
        placedUs=(_uniform("i", seed + 6) * span_us).cast(pl.Int64),
        lifeUs=((-(1 - _uniform("i", seed + 7)).log()) * 3 * 3_600_000_000).cast(pl.Int64),
        nUpdates=(_uniform("i", seed + 8) * 4).floor().cast(pl.Int64).clip(0, 3) * (_uniform("i", seed + 9) < 0.5),
        closes=_uniform("i", seed + 10) < 0.9,
        statusIx=(pl.col("i").hash(seed + 11) % len(FINAL_STATUSES)).cast(pl.Int64),
        rest=_uniform("i", seed + 12) < 0.01,
        cloid=pl.when(_uniform("i", seed + 13) < 0.3).then(pl.format("0x{}", pl.col("i").hash(seed + 14))),
    )
    # Amend chains: an order that replaces the one before it takes over its chain root's trader,
    # coin, side, kind, USD size and client id (its price differs), placed when its predecessor closes.
    replaces = (pl.col("i") > 0) & (
        (_uniform("i", seed + 17) < REPLACE_SHARE) | (pl.col("i") % LONG_CHAIN_EVERY).is_between(1, LONG_CHAIN)
    )
    df = df.with_columns(replaces=replaces).with_columns(
        root=pl.when(pl.col("replaces")).then(None).otherwise(pl.col("i")).forward_fill(),
        replacedNext=pl.col("replaces").shift(-1, fill_value=False),
    )
    inherited = ["trader", "coinIx", "side", "usd", "kind", "placedUs", "cloid"]
    df = df.with_columns([pl.col(c).gather(pl.col("root")) for c in inherited]).with_columns(
        # a replaced order lives 0-4 minutes (re-quotes), then closes canceled (rarely "filled")
        lifeUs=pl.when(pl.col("replacedNext"))
        .then((_uniform("i", seed + 18) * 240_000_000).cast(pl.Int64))
        .otherwise(pl.col("lifeUs")),
        closes=pl.col("closes") | pl.col("replacedNext"),
        statusIx=pl.when(pl.col("replacedNext"))
        .then(
            pl.when(_uniform("i", seed + 19) < SPURIOUS_SHARE)
            .then(pl.lit(FINAL_STATUSES.index("filled")))
            .otherwise(pl.lit(FINAL_STATUSES.index("canceled")))
        )
        .otherwise(pl.col("statusIx"))
        .cast(pl.Int64),
    )
    df = df.with_columns(
        placedUs=pl.col("placedUs") + pl.col("lifeUs").cum_sum().over("root") - pl.col("lifeUs"),
        replacesOid=pl.when(pl.col("replaces")).then(pl.col("oid") - 1),
        replacedByOid=pl.when(pl.col("replacedNext")).then(pl.col("oid") + 1),
        replaceMatch=pl.when(pl.col("replaces") | pl.col("replacedNext")).then(
            pl.when(pl.col("cloid").is_not_null()).then(pl.lit("cloid")).otherwise(pl.lit("inferred"))
        ),
    )
    mark = marks.gather(df["coinIx"])
    df = df.with_columns(
        ethAddress=pl.format("0x{}", pl.col("trader").hash(seed + 15).cast(pl.String).str.zfill(40)),
        coin=coin_names.gather(df["coinIx"]),
        limitPx=pl.Series(mark) * pl.when(pl.col("side") == "B").then(1 - pl.col("away")).otherwise(1 + pl.col("away")),
        orderType=pl.when(pl.col("kind") < 0.9).then(pl.lit("Limit")).otherwise(pl.lit("Stop Market")),
        tif=pl.when(pl.col("kind") < 0.6).then(pl.lit("Gtc")).when(pl.col("kind") < 0.9).then(pl.lit("Alo")),
        parentOid=pl.when((pl.col("kind") >= 0.95) & (pl.col("root") > 0)).then(pl.col("root") + 300_000_000_000 - 1),
        finalStatus=pl.Series(FINAL_STATUSES).gather(df["statusIx"]),
        placedAt=pl.lit(start) + pl.duration(microseconds=pl.col("placedUs")),
    )
    return df.with_columns(
        limitPx=pl.col("limitPx").round_sig_figs(5),
        origSz=(pl.col("usd") / pl.col("limitPx")).round_sig_figs(4),
        closedAt=pl.col("placedAt") + pl.duration(microseconds=pl.col("lifeUs")),
    )


def events_frame(n_events: int, seed: int = 1, **span: Any) -> pl.DataFrame:
    """About ``n_events`` events in the ``order_events`` schema (sorted by time, like MongoDB reads);
    ``span``: :func:`orders_frame`'s ``day``, ``days`` and ``traders``."""
    orders = orders_frame(max(1, int(n_events / EVENTS_PER_ORDER)), seed, **span)
    n = pl.lit(1) + pl.col("nUpdates") + pl.col("closes").cast(pl.Int64)
    ev = orders.with_columns(seq=pl.int_ranges(0, n)).explode("seq")
    last = pl.col("seq") == pl.col("nUpdates") + 1
    is_closed = last & pl.col("closes")
    is_update = (pl.col("seq") > 0) & ~is_closed
    # updates alternate a partial fill (size down 40 %) and a price amend (+/- 0.5 %)
    fills_before = ((pl.col("seq") + 1) // 2).clip(0, pl.col("nUpdates"))
    amends_before = (pl.col("seq") // 2).clip(0, pl.col("nUpdates"))
    sz = pl.col("origSz") * pl.lit(0.6).pow(fills_before)
    px = pl.col("limitPx") * pl.lit(1.005).pow(amends_before)
    partial = is_update & (pl.col("seq") % 2 == 1)
    event_at = pl.col("placedAt") + pl.duration(
        microseconds=(pl.col("lifeUs") * pl.col("seq") / (pl.col("nUpdates") + 1)).cast(pl.Int64)
    )
    ev = ev.with_columns(
        action=pl.when(pl.col("seq") == 0).then(pl.lit("new")).when(is_closed).then(pl.lit("closed"))
        .otherwise(pl.lit("updated")),
        sz=pl.when(is_closed & (pl.col("finalStatus") == "filled")).then(sz).otherwise(sz).round_sig_figs(5),
        limitPx=px.round_sig_figs(5),
        prevSz=pl.when(is_update).then((pl.col("origSz") * pl.lit(0.6).pow(fills_before - partial.cast(pl.Int64)))
                                       .round_sig_figs(5)),
        prevLimitPx=pl.when(is_update).then((pl.col("limitPx") * pl.lit(1.005).pow(amends_before - (~partial)
                                                                                   .cast(pl.Int64))).round_sig_figs(5)),
        changes=pl.when(partial).then(pl.lit(["sz"])).when(is_update).then(pl.lit(["limitPx"])),
        partialFill=pl.when(is_update).then(partial),
        finalStatus=pl.when(is_closed).then(pl.col("finalStatus")),
        replacesOid=pl.when(pl.col("seq") == 0).then(pl.col("replacesOid")),
        replacedByOid=pl.when(is_closed).then(pl.col("replacedByOid")),
        replaceMatch=pl.when(((pl.col("seq") == 0) & pl.col("replaces")) | (is_closed & pl.col("replacedNext"))).then(
            pl.col("replaceMatch")
        ),
        eventAt=event_at,
        source=pl.when(pl.col("rest") & ((pl.col("seq") == 0) | is_closed))
        .then(pl.lit("rest"))
        .otherwise(pl.lit("ws")),
    )
    dec = tables.DECIMAL
    ev = ev.with_columns(
        eventKey=pl.when(pl.col("action") == "updated").then(pl.format("updated:{}", "seq")).otherwise("action"),
        status=pl.when(pl.col("action") == "closed").then(pl.lit("closed")).otherwise(pl.lit("open")),
        triggerCondition=pl.when(pl.col("orderType") == "Limit").then(pl.lit("N/A")).otherwise(pl.lit("Price below")),
        triggerPx=pl.lit(0.0),
        notionalUsd=pl.col("sz") * pl.col("limitPx"),
        isTrigger=pl.col("orderType") != "Limit",
        dex=pl.col("coin").str.extract(r"^([^:]*):", 1).fill_null(""),
        reduceOnly=pl.col("parentOid").is_not_null(),
        isPositionTpsl=pl.lit(False),
        timestamp=pl.col("placedAt"),
        observedAt=pl.col("eventAt"),
        serverTime=pl.col("eventAt"),
        statusTimestamp=pl.when(pl.col("action") == "closed").then(pl.col("eventAt")),
        createdAt=pl.col("eventAt") + pl.duration(milliseconds=200),
    ).with_columns([pl.col(c).cast(dec) for c in ("limitPx", "sz", "origSz", "triggerPx", "prevSz", "prevLimitPx")])
    # no order-book context (the collector's books are not simulated): null as without a fresh book
    ev = ev.with_columns([pl.lit(None, dtype).alias(name) for name, dtype, _ in tables.BOOK_COLUMNS])
    return tables.conform(ev, tables.ORDER_EVENTS).sort("eventAt").collect()


def write_events(path: Path, n_events: int, seed: int = 1) -> int:
    """Write the events to Parquet (the shape the assets read); return how many rows."""
    df = events_frame(n_events, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)
    return df.height
