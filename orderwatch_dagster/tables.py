"""Every Parquet table this code location writes: its columns, their types and their meaning.

One place for the contract with analysts: the transforms cast their output to these schemas,
the assets publish them as Dagster column schemas, and the documentation's table reference
(docs/tables.md) is generated from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")
DECIMAL = pl.Decimal(38, 8)
"""Prices and sizes: the exchange's decimal strings, exact (Hyperliquid uses at most 8 decimals)."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    description: str


def _cols(*cols: tuple[str, pl.DataType, str]) -> tuple[Column, ...]:
    return tuple(Column(n, t, d) for n, t, d in cols)


BOOK_COLUMNS: tuple[tuple[str, pl.DataType, str], ...] = (
    ("bookMidPx", pl.Float64(), "new/updated only: the coin's l2Book mid ((best bid + best ask) / 2) when seen"),
    (
        "distanceBps",
        pl.Float64(),
        "new/updated only: how far the market must move from mid to reach the order, in bps of mid: > 0 still "
        "to go, < 0 already past (a crossing limit order); trigger orders: to the trigger price in the direction "
        "that triggers them (null for an unknown trigger type)",
    ),
    ("depthAheadUsd", pl.Float64(), "new/updated only: resting notional on the order's side at its price or better"),
    ("levelShare", pl.Float64(), "new/updated only: the order's size / the total size at its price level (top 20)"),
    ("bookDepth1pctUsd", pl.Float64(), "new/updated only: notional on the order's side within 1 % of mid"),
    ("bookAt", UTC_TS, "new/updated only: the book's exchange time; all book columns null without a fresh book"),
)
"""Order-book context stamped by the collector on new/updated events (``collector_service.schema.BOOK_FIELDS``)."""

ORDER_EVENTS = _cols(
    ("eventAt", UTC_TS, "when the collector saw the event: observedAt, else createdAt; the partition day"),
    ("ethAddress", pl.String(), "trader's lower-case 0x address"),
    ("oid", pl.Int64(), "exchange order id"),
    ("eventKey", pl.String(), "per-order idempotency key: new | closed | updated:<seq>"),
    ("action", pl.String(), "new | updated | closed"),
    ("status", pl.String(), "open (new/updated) or closed"),
    ("seq", pl.Int64(), "event number within its order (new = 0)"),
    ("source", pl.String(), "ws (WebSocket snapshot), poll (polled snapshot) or rest (recovered over REST)"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex and spot, else the HIP-3 dex ("xyz" for xyz:TSLA)'),
    ("coin", pl.String(), "market, e.g. BTC, @107 (spot), xyz:TSLA (HIP-3)"),
    ("side", pl.String(), "B (bid/buy) or A (ask/sell)"),
    ("orderType", pl.String(), "Limit, Stop Market, Take Profit Limit, ..."),
    ("tif", pl.String(), "time in force (Gtc, Alo, Ioc) or null"),
    ("triggerCondition", pl.String(), "trigger condition text for trigger orders"),
    ("limitPx", DECIMAL, "limit price"),
    ("sz", DECIMAL, "remaining size"),
    ("origSz", DECIMAL, "size as placed (or as last amended)"),
    ("triggerPx", DECIMAL, "trigger price (0 for plain orders)"),
    ("prevSz", DECIMAL, "updated only: size before the change"),
    ("prevLimitPx", DECIMAL, "updated only: limit price before the change"),
    ("notionalUsd", pl.Float64(), "sz x limitPx in USD"),
    *BOOK_COLUMNS,
    ("isTrigger", pl.Boolean(), "trigger (stop / take-profit) order"),
    ("reduceOnly", pl.Boolean(), "reduce-only order"),
    ("isPositionTpsl", pl.Boolean(), "TP/SL attached to the whole position"),
    ("cloid", pl.String(), "client order id, when the trader set one"),
    ("parentOid", pl.Int64(), "TP/SL child: the parent order's oid"),
    ("replacesOid", pl.Int64(), "new only: this order replaced that oid (a modify is a cancel-and-replace)"),
    ("replacedByOid", pl.Int64(), "closed only: the order was replaced by that oid (a modify)"),
    ("replaceMatch", pl.String(), "on linked events: cloid (same cloid) or inferred (no cloid: same coin/side/type)"),
    ("changes", pl.List(pl.String()), "updated only: the fields that changed"),
    ("partialFill", pl.Boolean(), "updated only: size went down with origSz unchanged"),
    ("finalStatus", pl.String(), "closed only: exchange's final status (open-ended) or unknown"),
    ("timestamp", UTC_TS, "order placement time (exchange clock)"),
    ("observedAt", UTC_TS, "when the collector saw the change"),
    ("serverTime", UTC_TS, "exchange snapshot clock of the frame, when sent"),
    ("statusTimestamp", UTC_TS, "closed only: when the exchange says the final status was reached"),
    ("createdAt", UTC_TS, "when the collector built the document"),
)

ORDER_LIFECYCLES = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("rootOid", pl.Int64(), "the chain's first oid (the order as first placed); the row's key with ethAddress"),
    ("oid", pl.Int64(), "the chain's current oid: its last order (the latest replacement, else rootOid)"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex and spot, else the HIP-3 dex'),
    ("coin", pl.String(), "market"),
    ("side", pl.String(), "B or A"),
    ("orderType", pl.String(), "order type (last seen)"),
    ("parentOid", pl.Int64(), "TP/SL child: the parent's oid"),
    ("placedAt", UTC_TS, "the root order's placement time (exchange clock), else its firstSeenAt"),
    ("firstSeenAt", UTC_TS, "first event of the chain seen by the collector"),
    ("closedAt", UTC_TS, "when the collector saw the last order close; null if open at the day's end"),
    ("finalStatus", pl.String(), "the last order's final status; null while open"),
    ("outcome", pl.String(), "the last order's: filled | canceled | rejected | triggered | open | unknown"),
    ("durationS", pl.Float64(), "seconds from placedAt to closedAt (to the day's end if open)"),
    ("amendCount", pl.UInt32(), "amends: replacements in the chain plus same-oid updates that are not partial fills"),
    ("nUpdates", pl.UInt32(), "updated events of every order in the chain (in-place amends and partial fills)"),
    (
        "nPriceChanges",
        pl.UInt32(),
        "limit price changes: updated events that changed limitPx, plus replacements at a new limitPx",
    ),
    ("origSz", DECIMAL, "size as first placed (the root order's)"),
    ("lastSz", DECIMAL, "the last order's last remaining size seen while open (else its close's size)"),
    ("filledSz", DECIMAL, "size traded: sum of the fills' sz over every order of the chain (0 without fills)"),
    (
        "filledSzEvents",
        DECIMAL,
        "size filled as the order events tell it: partial-fill size decreases of every order, plus the remainder "
        "when the last filled; null for an order known only from fills",
    ),
    ("nFills", pl.UInt32(), "fills of every order of the chain"),
    ("avgFillPx", pl.Float64(), "size-weighted average fill price: sum(px x sz) / sum(sz); null without fills"),
    (
        "feesUsd",
        DECIMAL,
        "sum of the fills' fees charged in USDC (negative: net rebate); null when a fill's fee is in another token",
    ),
    ("makerShare", pl.Float64(), "maker fill size / filled size (maker: the fill did not cross); null without fills"),
    ("realizedPnl", DECIMAL, "sum of the fills' closedPnl"),
    ("firstFillAt", UTC_TS, "time of the chain's first fill (exchange clock)"),
    ("lastFillAt", UTC_TS, "time of the chain's last fill (exchange clock)"),
    ("maxNotionalUsd", pl.Float64(), "largest sz x limitPx over the chain's events"),
    (
        "recovered",
        pl.Boolean(),
        "some event of the chain was recovered over REST (an order known only from fills: some fill was)",
    ),
    (
        "seenInEvents",
        pl.Boolean(),
        "false: an order known only from its fills (it traded without resting in a snapshot, e.g. an IOC); "
        "then placedAt / closedAt are its first / last fill and outcome is filled",
    ),
    ("bookMidPx", pl.Float64(), "at placement (the root order's new event): the coin's book mid"),
    (
        "distanceBps",
        pl.Float64(),
        "at placement: how far the market had to move from mid to reach the order (trigger orders: to trigger it), "
        "in bps of mid: > 0 still to go, < 0 already past",
    ),
    ("depthAheadUsd", pl.Float64(), "at placement: resting notional on its side at its price or better"),
    ("levelShare", pl.Float64(), "at placement: its size / the total size at its price level"),
    ("bookDepth1pctUsd", pl.Float64(), "at placement: notional on its side within 1 % of mid"),
    (
        "bookAt",
        UTC_TS,
        "at placement: the book's exchange time; the book columns are null when the root's new event had no "
        "fresh book or was not seen",
    ),
    ("oids", pl.List(pl.Int64()), "every oid of the chain, ascending (rootOid first, oid last)"),
    ("label", pl.String(), "the trader's label in the watch list (trader_watchlist), null when it has none"),
    ("tags", pl.List(pl.String()), "the trader's watch-list tags (cohorts), empty when it has none"),
)

LARGE_CHANGE_ALERTS = _cols(
    ("alertKey", pl.String(), "<ethAddress>:<oid>:<eventKey>; unique, also the order_alerts key"),
    ("eventAt", UTC_TS, "when the event was seen"),
    ("ethAddress", pl.String(), "trader"),
    ("oid", pl.Int64(), "exchange order id"),
    ("coin", pl.String(), "market"),
    ("side", pl.String(), "B or A"),
    ("action", pl.String(), "new | updated | closed"),
    ("eventKey", pl.String(), "the event's per-order key"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex and spot, else the HIP-3 dex'),
    ("replacesOid", pl.Int64(), "a replacement's new event: the order it replaced (a modify), else null"),
    (
        "reason",
        pl.String(),
        "comma-separated: large_order, crossed_threshold, large_change, large_close, large_vs_book (opt-in)",
    ),
    (
        "notionalBeforeUsd",
        pl.Float64(),
        "order notional before the event (0 for new; a replacement: the replaced order's last notional)",
    ),
    ("notionalAfterUsd", pl.Float64(), "order notional after the event (0 for closed)"),
    ("changeUsd", pl.Float64(), "notionalAfterUsd - notionalBeforeUsd"),
    (
        "changeVsBook1pct",
        pl.Float64(),
        "changeUsd / the event's bookDepth1pctUsd (the change against the book within 1 % of mid); null without a book",
    ),
    ("finalStatus", pl.String(), "closed only: exchange's final status"),
    ("partialFill", pl.Boolean(), "updated only: a partial fill (size down, origSz unchanged); null otherwise"),
    ("source", pl.String(), "ws, poll or rest"),
    ("message", pl.String(), "one human-readable line"),
    ("label", pl.String(), "the trader's label in the watch list (trader_watchlist), null when it has none"),
    ("tags", pl.List(pl.String()), "the trader's watch-list tags (cohorts), empty when it has none"),
)

OPEN_ORDERS_SNAPSHOT = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("oid", pl.Int64(), "exchange order id"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex and spot, else the HIP-3 dex'),
    ("coin", pl.String(), "market"),
    ("side", pl.String(), "B or A"),
    ("orderType", pl.String(), "order type"),
    ("tif", pl.String(), "time in force"),
    ("limitPx", DECIMAL, "limit price at the day's end"),
    ("sz", DECIMAL, "remaining size at the day's end"),
    ("origSz", DECIMAL, "size as placed or last amended"),
    ("triggerPx", DECIMAL, "trigger price"),
    ("isTrigger", pl.Boolean(), "trigger order"),
    ("reduceOnly", pl.Boolean(), "reduce-only"),
    ("parentOid", pl.Int64(), "TP/SL child: the parent's oid"),
    ("notionalUsd", pl.Float64(), "sz x limitPx"),
    ("placedAt", UTC_TS, "placement time"),
    ("lastEventAt", UTC_TS, "last event seen"),
    ("source", pl.String(), "source of the last event"),
)

POSITIONS_SNAPSHOT = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex, else the HIP-3 dex ("xyz" for xyz:TSLA)'),
    ("coin", pl.String(), "market"),
    ("szi", DECIMAL, "signed size: > 0 long, < 0 short"),
    ("side", pl.String(), "long or short"),
    ("entryPx", DECIMAL, "average entry price"),
    ("positionValue", DECIMAL, "position value in USD"),
    ("unrealizedPnl", DECIMAL, "unrealized PnL in USD"),
    ("returnOnEquity", DECIMAL, "return on equity (fraction)"),
    ("liquidationPx", DECIMAL, "liquidation price; null when none"),
    ("markPx", pl.Float64(), "the mark this state was valued at: positionValue / |szi|"),
    ("liquidationDistancePct", pl.Float64(),
     "how far that mark may still move against the position before the liquidation price, in % of the mark "
     "(0 or below: at or past it); null without a liquidation price"),
    ("marginUsed", DECIMAL, "margin used in USD"),
    ("leverageType", pl.String(), "cross or isolated"),
    ("leverage", pl.Int64(), "leverage"),
    ("maxLeverage", pl.Int64(), "the coin's maximum leverage"),
    ("updatedAt", UTC_TS, "when the collector saw this state (observedAt, else createdAt)"),
    ("serverTime", UTC_TS, "exchange clock of that state"),
    ("source", pl.String(), "ws or rest"),
)

TRADER_DAILY_STATS = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("nEvents", pl.UInt32(), "order events seen that day"),
    ("ordersPlaced", pl.UInt32(), "fresh placements that day: new events that are not replacements"),
    ("ordersAmended", pl.UInt32(), "chains (logical orders) with at least one amend that day"),
    ("amends", pl.UInt32(), "amend events that day: replacements' new events plus same-oid non-partial updates"),
    ("ordersFilled", pl.UInt32(), "chains whose last order closed filled that day"),
    (
        "ordersCanceled",
        pl.UInt32(),
        "chains whose last order closed canceled (any *Canceled status) that day; a replaced order is no cancel",
    ),
    ("ordersRejected", pl.UInt32(), "chains whose last order closed rejected that day"),
    ("openOrdersAtEnd", pl.UInt32(), "chains still open at the day's end"),
    (
        "ordersFilledUnseen",
        pl.UInt32(),
        "orders known only from their fills that day (traded without resting: IOC / market); not in the counts above",
    ),
    ("cancelRatio", pl.Float64(), "ordersCanceled / ordersPlaced; null when nothing was placed"),
    ("medianTimeToFillS", pl.Float64(), "median durationS of the chains filled that day"),
    ("medianTimeToCancelS", pl.Float64(), "median durationS of the chains canceled that day"),
    (
        "medianTimeToFirstFillS",
        pl.Float64(),
        "median seconds from placedAt to firstFillAt over the chains (seen in events) first filled that day",
    ),
    ("notionalPlacedUsd", pl.Float64(), "sum of sz x limitPx over that day's fresh placements"),
    ("fills", pl.UInt32(), "fills that day"),
    ("volumeUsd", pl.Float64(), "sum of px x sz over that day's fills"),
    ("makerRatio", pl.Float64(), "maker fills' notional / volumeUsd; null without fills"),
    ("fees", DECIMAL, "sum of that day's fees charged in USDC (negative: net rebates); fees in other tokens left out"),
    ("realizedPnl", DECIMAL, "sum of closedPnl over that day's fills"),
    ("coinsTraded", pl.UInt32(), "distinct coins with events that day"),
    ("coins", pl.List(pl.String()), "those coins, sorted"),
    ("label", pl.String(), "the trader's label in the watch list (trader_watchlist), null when it has none"),
    ("tags", pl.List(pl.String()), "the trader's watch-list tags (cohorts), empty when it has none"),
)

FILLS = _cols(
    ("time", UTC_TS, "fill time (exchange clock); the partition day"),
    ("ethAddress", pl.String(), "trader"),
    ("oid", pl.Int64(), "the order that filled"),
    ("tid", pl.Int64(), "trade id (shared by the two sides of a trade); (ethAddress, oid, tid) is unique"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex and spot, else the HIP-3 dex'),
    ("coin", pl.String(), "market, e.g. BTC, @107 (spot), xyz:TSLA (HIP-3)"),
    ("side", pl.String(), "B (buy) or A (sell)"),
    ("dir", pl.String(), "Open Long, Close Short, Buy, Sell, ... as sent"),
    ("px", DECIMAL, "fill price"),
    ("sz", DECIMAL, "fill size"),
    ("notionalUsd", pl.Float64(), "px x sz (in the quote currency: USDC on the main dex)"),
    ("startPosition", DECIMAL, "the trader's position in the coin before the fill"),
    ("closedPnl", DECIMAL, "PnL the fill realized"),
    ("crossed", pl.Boolean(), "true: the order took liquidity (taker)"),
    ("isMaker", pl.Boolean(), "not crossed: the order was resting (maker)"),
    ("fee", DECIMAL, "fee charged, in feeToken (negative: a rebate)"),
    ("feeToken", pl.String(), "the fee's token: USDC, or e.g. the bought token on a spot buy"),
    ("feeUsd", DECIMAL, "fee when feeToken is USDC; null for other tokens (no conversion is made)"),
    ("builderFee", DECIMAL, "the builder's fee, when the order came through a builder code (as sent)"),
    ("hash", pl.String(), "transaction hash"),
    ("cloid", pl.String(), "client order id, when set"),
    ("twapId", pl.Int64(), "TWAP id when the fill is part of a TWAP order"),
    ("liquidatedUser", pl.String(), "liquidation fills: the liquidated user"),
    ("liquidationMarkPx", DECIMAL, "liquidation fills: the mark price"),
    ("liquidationMethod", pl.String(), "liquidation fills: market or backstop"),
    ("source", pl.String(), "ws (userFills feed) or rest (userFillsByTime after a gap, polled traders, backfill)"),
    ("observedAt", UTC_TS, "when the collector received the fill"),
    ("createdAt", UTC_TS, "when the collector built the document"),
)

TWAPS = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("twapId", pl.Int64(), "the exchange's TWAP id; its slices are the fills with this twapId"),
    ("coin", pl.String(), "market, e.g. BTC"),
    ("dex", pl.String(), 'perp dex: "" = main perp dex and spot, else the HIP-3 dex'),
    ("side", pl.String(), "B (buy) or A (sell)"),
    ("sz", DECIMAL, "the TWAP's total size"),
    ("minutes", pl.Int64(), "planned duration in minutes (one slice every 30 s)"),
    ("reduceOnly", pl.Boolean(), "reduce-only TWAP"),
    ("randomize", pl.Boolean(), "randomized slice timing"),
    ("startedAt", UTC_TS, "start (exchange clock)"),
    ("plannedEndAt", UTC_TS, "startedAt + minutes"),
    (
        "status",
        pl.String(),
        "at the day's end: activated (still running), finished (ran its duration), terminated (stopped early), error",
    ),
    ("endedAt", UTC_TS, "when it finished or was terminated (exchange clock: whole seconds from twapHistory, "
     "the line's time from a node); null while running"),
    (
        "executedSz",
        DECIMAL,
        "size traded: at the end as the exchange reports it; while running, the sum of its slice fills stored by "
        "the day's end",
    ),
    ("executedNtl", DECIMAL, "notional traded (sum of px x sz), from the same source as executedSz"),
    ("avgPx", pl.Float64(), "average execution price: executedNtl / executedSz; null before any slice traded"),
    ("progress", pl.Float64(), "executedSz / sz (0..1)"),
    ("notionalUsd", pl.Float64(), "planned notional: sz x avgPx (what the large-TWAP alert compares)"),
    ("slices", pl.UInt32(), "slice fills of this TWAP in the fills table by the day's end"),
    ("label", pl.String(), "the trader's label in the watch list (trader_watchlist), null when it has none"),
    ("tags", pl.List(pl.String()), "the trader's watch-list tags (cohorts), empty when it has none"),
)

TRADER_ACCOUNT_DAYS = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("dex", pl.String(), 'perp dex of the account: "" = main perp dex (with spot), else the HIP-3 dex'),
    ("day", pl.Date(), "the UTC day; (ethAddress, dex, day) is unique"),
    ("samples", pl.UInt32(), "trader_accounts samples that day (by serverTime)"),
    ("firstAt", UTC_TS, "the day's first sample (exchange clock)"),
    ("lastAt", UTC_TS, "the day's last sample (exchange clock)"),
    ("openValue", pl.Float64(), "accountValue of the day's first sample, USD"),
    ("highValue", pl.Float64(), "highest accountValue that day"),
    ("lowValue", pl.Float64(), "lowest accountValue that day"),
    ("closeValue", pl.Float64(), "accountValue of the day's last sample"),
    (
        "maxDrawdown",
        pl.Float64(),
        "largest fall within the day from a running peak, as a fraction of that peak (0.1 = 10 %)",
    ),
    ("closeNtlPos", pl.Float64(), "totalNtlPos (total position notional) of the day's last sample, USD"),
    (
        "closeRawUsd",
        pl.Float64(),
        "totalRawUsd of the day's last sample, USD: accountValue minus the sum of szi x mark over the dex's "
        "positions, so the unrealized PnL at that sample is closeValue - closeRawUsd - sum of szi x entryPx",
    ),
)

SCORECARD_WINDOWS = ("1d", "7d", "30d", "followed")
"""The scorecards' windows: the last 1, 7 and 30 days up to the day's end, and since the trader was followed."""

TRADER_SCORECARDS = _cols(
    ("ethAddress", pl.String(), "trader"),
    ("window", pl.String(), "1d | 7d | 30d | followed; (ethAddress, window) is unique"),
    (
        "windowStart",
        UTC_TS,
        "the window's start: the day's end minus 1, 7 or 30 days; for followed, followedSince",
    ),
    ("windowEnd", UTC_TS, "the window's end: the partition day's end (exclusive)"),
    (
        "followedSince",
        UTC_TS,
        "the first time orderwatch observed the trader: its first order event, fill received or account sample",
    ),
    (
        "partial",
        pl.Boolean(),
        "true: followedSince is after windowStart, so the order-behaviour figures (and the account and position "
        "figures) cover only [followedSince, windowEnd)",
    ),
    ("fills", pl.UInt32(), "fills with time in the window (including fills recovered over REST from before following)"),
    ("volumeUsd", pl.Float64(), "sum of px x sz over those fills"),
    ("realizedPnl", DECIMAL, "sum of those fills' closedPnl (gross of fees; funding not included)"),
    ("fees", DECIMAL, "sum of those fills' fees charged in USDC (negative: net rebates); other tokens left out"),
    (
        "unrealizedPnl",
        pl.Float64(),
        "at the window's end (the day's end), per dex: closeValue - closeRawUsd - sum of szi x entryPx of the open "
        "positions at the day's last trader_accounts sample when it is not older than their last change and they are "
        "all cross margined; else (or when every position has a newer mark) each position at szi x (mark - entryPx) "
        "with the market_marks mark when it was served after the position's last update and before the day's end, "
        "else at its own unrealizedPnl as last seen",
    ),
    (
        "unrealizedAsOf",
        UTC_TS,
        "the oldest price time behind unrealizedPnl (an account sample's serverTime, a mark's time or a position's "
        "update)",
    ),
    ("openPositions", pl.UInt32(), "non-zero positions at the window's end"),
    (
        "roundTrips",
        pl.UInt32(),
        "perp round trips closed in the window: a position opened from flat (or by a flip) and closed to flat or "
        "flipped; both its opening and its closing fill must be in the fills table",
    ),
    ("wins", pl.UInt32(), "round trips whose summed closedPnl is > 0"),
    ("winRate", pl.Float64(), "wins / roundTrips; null without round trips"),
    (
        "profitFactor",
        pl.Float64(),
        "summed closedPnl of winning round trips / |that of losing ones|; null without a losing one",
    ),
    ("avgHoldS", pl.Float64(), "mean seconds from a round trip's opening fill to its closing fill"),
    ("medianHoldS", pl.Float64(), "median of the same"),
    (
        "accountValue",
        pl.Float64(),
        "main-dex account value at the last trader_accounts sample before the window's end, USD",
    ),
    (
        "maxDrawdown",
        pl.Float64(),
        "largest fall of the main-dex account value from a running peak within the window, as a fraction of the "
        "peak (deposits and withdrawals move it too)",
    ),
    (
        "returnVolatility",
        pl.Float64(),
        "sample standard deviation of the daily returns (close / previous day's close - 1) of the days in the "
        "window; null with fewer than two",
    ),
    (
        "leverageAvg",
        pl.Float64(),
        "the positions' leverage setting, averaged over the end-of-day positions of the window's days weighted by "
        "positionValue",
    ),
    ("leverageMax", pl.Int64(), "the highest leverage setting among those positions"),
    ("ordersPlaced", pl.UInt32(), "logical orders (amend chains) seen in events and placed in the window"),
    ("cancelRatio", pl.Float64(), "of those: the share whose last order was canceled (a replaced order is no cancel)"),
    ("modifyRate", pl.Float64(), "of those: the share amended by a modify (a replacement, replacesOid)"),
    ("medianTimeToFirstFillS", pl.Float64(), "of those with a fill: median seconds from placement to the first fill"),
    ("makerShare", pl.Float64(), "maker (crossed = false) fills' notional / volumeUsd; null without fills"),
    (
        "medianDistanceBps",
        pl.Float64(),
        "of the orders placed in the window: median distance from mid at placement (distanceBps of the new event)",
    ),
    ("label", pl.String(), "the trader's label in the watch list (trader_watchlist), null when it has none"),
    ("tags", pl.List(pl.String()), "the trader's watch-list tags (cohorts), empty when it has none"),
)

LEADERBOARD_DECIMAL = pl.Decimal(38, 10)
"""Leaderboard numbers: the document's decimal strings, exact (it gives up to 10 decimals)."""
_WINDOW_COLUMNS = tuple(
    (f"{w}{f.capitalize()}", LEADERBOARD_DECIMAL, f"{w} window: {what}")
    for w in ("day", "week", "month", "allTime")
    for f, what in (("pnl", "PnL in USD"), ("roi", "return as a fraction (0.0133 = 1.33 %)"), ("vlm", "volume in USD"))
)

LEADERBOARD = _cols(
    ("snapshotAt", UTC_TS, "when the snapshot was fetched; (snapshotAt, ethAddress) is unique"),
    ("ethAddress", pl.String(), "the account, lower-case 0x address"),
    ("displayName", pl.String(), "the account's display name, null when it has none"),
    ("accountValue", LEADERBOARD_DECIMAL, "account value in USD at the snapshot"),
    ("prize", pl.Float64(), "competition prizes, as given (usually 0)"),
    *_WINDOW_COLUMNS,
    *(
        (f"{w}Rank", pl.UInt32(), f"rank by {w} PnL in the snapshot, 1 = highest (ties: document order)")
        for w in ("day", "week", "month", "allTime")
    ),
    ("sizeCohort", pl.String(), "cohort by accountValue ([cohorts].size of trader_selection.toml)"),
    ("pnlCohort", pl.String(), "cohort by allTimePnl ([cohorts].pnl of trader_selection.toml)"),
)

TRADER_SELECTION = _cols(
    ("snapshotAt", UTC_TS, "the leaderboard snapshot the decisions were made on"),
    ("ethAddress", pl.String(), "trader"),
    (
        "decision",
        pl.String(),
        "selected | kept by hysteresis | pinned (on the list); dropped | excluded (off it); challenger (not yet)",
    ),
    ("reason", pl.String(), "why, with the numbers"),
    ("score", pl.Float64(), "ranking score (0..1) among the eligible; null when not eligible"),
    ("rank", pl.UInt32(), "rank by score among the eligible, 1 = best"),
    ("streak", pl.UInt32(), "challengers: consecutive snapshots beating comparedWith by the margin"),
    ("comparedWith", pl.String(), "the trader it was compared with (incumbent or challenger)"),
    ("comparedScore", pl.Float64(), "that trader's score"),
    ("selectedSince", UTC_TS, "on the list: the snapshot it joined (the minimum stay counts from it)"),
    ("label", pl.String(), "the leaderboard's displayName"),
    ("tags", pl.List(pl.String()), "its cohorts (size, all-time PnL)"),
    ("accountValue", LEADERBOARD_DECIMAL, "account value in USD at the snapshot"),
)

DAILY_TABLES: dict[str, tuple[Column, ...]] = {
    "order_events": ORDER_EVENTS,
    "fills": FILLS,
    "order_lifecycles": ORDER_LIFECYCLES,
    "large_change_alerts": LARGE_CHANGE_ALERTS,
    "open_orders_snapshot": OPEN_ORDERS_SNAPSHOT,
    "positions_snapshot": POSITIONS_SNAPSHOT,
    "trader_daily_stats": TRADER_DAILY_STATS,
    "twaps": TWAPS,
    "trader_account_days": TRADER_ACCOUNT_DAYS,
    "trader_scorecards": TRADER_SCORECARDS,
}
"""The tables partitioned by UTC day: one ``<table>.parquet`` per ``date=`` folder, rebuilt whole."""

SNAPSHOT_TABLES: dict[str, tuple[Column, ...]] = {
    "leaderboard": LEADERBOARD,
    "trader_selection": TRADER_SELECTION,
}
"""The tables written once per run: ``<table>-<UTC time>.parquet`` files in ``date=`` folders, history kept."""

TABLES: dict[str, tuple[Column, ...]] = {**DAILY_TABLES, **SNAPSHOT_TABLES}


def schema(columns: tuple[Column, ...]) -> pl.Schema:
    """The polars schema of a table."""
    return pl.Schema({c.name: c.dtype for c in columns})


def conform(df: pl.DataFrame | pl.LazyFrame, columns: tuple[Column, ...]) -> pl.LazyFrame:
    """Select and cast a frame's columns to the table's schema, in the table's order."""
    return df.lazy().select([pl.col(c.name).cast(c.dtype) for c in columns])
