"""The MongoDB schema the collector writes: collection names, document fields and indexes.

This module is the only part of ``collector_service`` that ``orderwatch_dagster`` may import:
it is the stored contract between the two halves, and the coverage plan both of them report
(:func:`coverage`). It imports only the standard library and :mod:`collector_service.exchange`
(the exchange's limits, constants only) so that importing it costs nothing.

``trader_orders`` holds one document per order event::

    ethAddress   str       lower-case 0x address of the trader
    oid          int       exchange order id
    eventKey     str       "new" | "closed" | "updated:<seq>"  (idempotency key, see below)
    action       str       "new" | "updated" | "closed"
    status       str       "open" for new/updated events, "closed" for closed events
    seq          int       the event's number within its order: new = 0, then 1, 2, ...
    source       str       "ws" (seen on a WebSocket snapshot) | "poll" (seen on a polled
                           frontendOpenOrders snapshot) | "rest" (recovered over REST) | "node"
                           (a status or fill line of a non-validating node's files)
    coin, side, orderType, tif, triggerCondition         str (tif/orderType may be None)
    limitPx, sz, origSz, triggerPx                       str, exact decimal strings as served
    isTrigger, reduceOnly, isPositionTpsl                bool
    dex          str       the perp dex the order lives on: "" for the first (main) perp dex and
                           for spot orders (the exchange serves spot orders with the first dex),
                           the dex name for HIP-3 builder-deployed dexes (coin "xyz:TSLA" -> "xyz")
    cloid        str       only when the exchange sent one
    parentOid    int       only for TP/SL children flattened out of a parent's ``children``
    timestamp    datetime  order placement time (UTC)
    observedAt   datetime  when the collector saw the change (UTC)
    serverTime   datetime  the exchange's snapshot clock for the frame, when it sent one
    createdAt    datetime  when the document was built for writing (UTC): when it was journaled
    storedAt     datetime  when the collector's writer wrote it to MongoDB (UTC, the writer's clock,
                           stamped right before the insert; a retried batch is stamped again): what
                           the Dagster sensors follow, since a document can reach MongoDB long
                           after createdAt (a restart replaying the journal, an outage, a lagging
                           shard)
    changes      list[str] updated only: the fields that changed
    partialFill  bool      updated only: size went down with origSz unchanged
    prevSz, prevLimitPx    str   updated only: the values before the change
    replacesOid  int       new only: this order replaced that oid (a modify is a cancel-and-replace:
                           new oid, same cloid; the old oid ends "canceled")
    replacedByOid int      closed only: the order was replaced by that oid (its finalStatus stays
                           what the exchange says, normally "canceled")
    replaceMatch str       on both linked events: "cloid" (same cloid) or "inferred" (no cloid: same
                           coin, side, order type and reduce-only flag, gone and appeared together)
    linkedAt     datetime  when a link was added to, or corrected on, an event already stored (a
                           later REST recovery found it); absent when written with the event
    recoveredAt  datetime  source "rest" only: when the event was recovered
    bookMidPx, distanceBps, depthAheadUsd, levelShare, bookDepth1pctUsd   float or null
                           new/updated only: the coin's l2Book when the event was seen (see
                           BOOK_FIELDS); null when no fresh book was at hand, never stale numbers
    bookAt       datetime  new/updated only: the exchange time of that book (null with the above)
    blockNumber  int       source "node" (by-block layout): the block of the status or fill
    nodeStatus   str       source "node": the node's status behind the event ("open",
                           "triggered", "filled", "canceled", ... or "fill" for a partial fill)
    fillTid      int       source "node", a partial fill's updated event: the fill's trade id
    finalStatus  str       closed only: the exchange's final status ("filled", "canceled",
                           "marginCanceled", ... open-ended) or "unknown" until resolved
    statusTimestamp datetime closed only: when the exchange says the final status was reached

A modify of a resting order is recorded as the old order's ``closed`` event (``finalStatus``
"canceled", ``replacedByOid``) plus the replacement's ``new`` event (``replacesOid``): an amend
chain is followed by these links. Should the exchange ever amend an order in place (same oid),
the change is an ``updated`` event as before.

At most one ``new`` and one ``closed`` per ``(ethAddress, oid)`` and one ``updated`` per
``(ethAddress, oid, seq)``: one unique index over ``(ethAddress, oid, eventKey)`` expresses all
three without a partial index (which nx-27017 silently ignores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from collector_service import exchange

ORDERS: Final = "trader_orders"
"""One document per order event (new / updated / closed)."""

OPEN_ORDERS: Final = "trader_open_orders"
"""The collector's current view of each open order, ``_id`` = ``"<ethAddress>:<oid>"``.

It is what a restarted collector reconciles the first snapshot against; closed orders are
removed from it.
"""

POSITIONS: Final = "trader_positions"
"""One document per position change per ``(ethAddress, coin)``, written when the size, entry
price or leverage changes (not on every push), from one clearinghouse state per perp dex; a closed
position has ``szi == "0.0"``. Fields: ethAddress, dex, coin, szi, entryPx, positionValue, unrealizedPnl,
returnOnEquity, liquidationPx, marginUsed, leverageType, leverage (int), maxLeverage,
serverTime, observedAt, createdAt, storedAt, source."""

ACCOUNTS: Final = "trader_accounts"
"""Samples of a trader's account per ``(ethAddress, dex)`` from ``clearinghouseState``'s
``marginSummary`` (and ``crossMaintenanceMarginUsed``), unique on ``(ethAddress, dex, serverTime)``:
accountValue, totalNtlPos, totalRawUsd, totalMarginUsed, crossMaintenanceMarginUsed, withdrawable
(exact decimal strings as served), positionChanged (bool: taken because a position of that dex
changed), serverTime, observedAt, createdAt, storedAt, source. Written with every position change of
that dex and otherwise at most once per ``ACCOUNT_SAMPLE_S`` of exchange time, from every
clearinghouse state the collector sees (the ``clearinghouseState`` feed, webData2's, polled and
node-refreshed ones): the account value series the scorecards' drawdown and volatility come from. A
later state with the same exchange time replaces the sample (collector_service.events.accounts). The
``_id`` is :func:`account_id`: matched by its fields instead, a sample replaced another taken in the same
second on nx-27017, which compares datetimes a second wide."""

ACCOUNT_SAMPLE_S: Final = 60.0
"""Seconds between two ``trader_accounts`` samples of an account whose positions did not change."""

MARKS: Final = "market_marks"
"""The latest mark price of every coin, ``_id`` = coin (as orders and positions name it):
``coin``, ``markPx`` (exact decimal string), ``at`` (when it was served: the collector's receive
time, since ``activeAssetCtx`` carries no exchange clock), ``observedAt``, ``source`` ("ws"). Kept
fresh from the public per-coin ``activeAssetCtx`` feed, which uses no per-IP user slot, for every
coin a followed trader holds a position in; replaced at most every 5 s per coin while the mark
moves and every 60 s while it does not (collector_service.events.marks). What the liquidation
distance of a position is measured against."""

RECOVERIES: Final = "collector_recoveries"
"""Gaps waiting to be recovered over REST, ``_id`` = trader address, ``since`` = when the gap
began (None: never seen). Kept until the recovery succeeds, so a crash or shutdown in between
does not forget the gap. A gap opened again while its recovery runs (a reconnect, a new dex) stays,
from its earliest start, for the recovery that follows."""

UNCOVERED: Final = "collector_uncovered"
"""Stretches of a trader's order history the collector could not recover, ``_id`` =
``"<ethAddress>:<since>"``: ``ethAddress``, ``since`` /
``until`` (the stretch), ``reason`` (``historicalOrders_limit``: the answer held the newest 2000
statuses only, all newer than the gap's start), ``rows``, ``detectedAt``. Orders that opened and
closed inside it are missing from ``trader_orders``. Also logged (``event=recovery_truncated``) and
counted (``recoveries_truncated`` in /healthz, ``orderwatch_recoveries_truncated_total``). Fills
have no such hole: ``userFillsByTime`` is read page by page from the gap's start."""

BOOK_FIELDS: Final = ("bookMidPx", "distanceBps", "depthAheadUsd", "levelShare", "bookDepth1pctUsd", "bookAt")
"""Order-book context stamped on ``new`` and ``updated`` events, from the coin's ``l2Book`` (20 levels a
side) at the time the event was seen:

* ``bookMidPx``: (best bid + best ask) / 2;
* ``distanceBps``: how far the market must move from mid to reach the order, in basis points of mid:
  positive while it has that far to go, negative when it is already past. A resting order is reached
  at its limit price (positive: a bid below mid, an ask above; negative: crossing); a trigger order at
  its trigger price, in the direction that triggers it (a sell stop or a buy take-profit as the price
  falls, a buy stop or a sell take-profit as it rises): a stop resting away from the market is
  positive, like a resting limit order. Null for a trigger order whose ``orderType`` is neither a
  stop nor a take-profit;
* ``depthAheadUsd``: resting notional (px x sz) on the order's side at prices better than or equal
  to the order's (bids at or above a bid, asks at or below an ask); null for trigger orders;
* ``levelShare``: the order's remaining size over the total size at its price level, when that
  level is among the book's 20; null otherwise and for trigger orders;
* ``bookDepth1pctUsd``: notional on the order's side within 1 % of mid;
* ``bookAt``: the book's exchange time.

All null when the coin had no book fresh enough (see ``collector_service.events.books``)."""

FILLS: Final = "trader_fills"
"""One document per fill of a followed trader, unique on ``(ethAddress, oid, tid)`` (a trade id
is shared by its two sides, which are two users or, in a self-trade, two orders of one user).
Every field the exchange sends, decimals as its exact strings: coin, px, sz, side, startPosition,
dir, closedPnl, hash, oid, crossed (true: taker), fee, feeToken, tid, twapId, cloid, builderFee,
liquidation...; ``time`` as a UTC datetime; plus ethAddress, dex, source ("ws" from the userFills
feed, "rest" from userFillsByTime / userFills over REST, "node" from the node's fill stream, then
with ``blockNumber`` in the by-block layout), observedAt, createdAt and storedAt (as in
``trader_orders``). A reconnect re-sends the feed's snapshot of recent fills; fills already stored
are not written again."""

TWAPS: Final = "trader_twaps"
"""One document per status change of a followed trader's TWAP order, unique on ``(ethAddress,
twapId, status)``: status ``activated`` (the start) and then one of ``finished`` (ran its full
duration), ``terminated`` (stopped early) or ``error`` (with the exchange's ``description``).
Fields: ethAddress, twapId (int), status, coin, dex, side ("B"/"A"), sz (the TWAP's total size),
executedSz and executedNtl (exact decimal strings: how much had traded, and for how much, when this
status was seen; at an end, the final amounts, so the average price is executedNtl / executedSz),
minutes (the duration), reduceOnly, randomize, timestamp (the start, UTC datetime), statusTime (when
the status was reached: the start for ``activated``; for an end, the exchange's time, whole seconds
from twapHistory, the line's time from the node), source ("ws" the twapStates feed or webData2,
"rest" twapHistory, "node" the node's ``node_twap_statuses`` lines), observedAt, createdAt,
storedAt (as in ``trader_orders``). The TWAP's slices are ``trader_fills`` with this ``twapId``."""

TWAP_ACTIVATED: Final = "activated"
TWAP_FINISHED: Final = "finished"
TWAP_TERMINATED: Final = "terminated"
TWAP_ERROR: Final = "error"
TWAP_END_STATUSES: Final = (TWAP_FINISHED, TWAP_TERMINATED, TWAP_ERROR)

WATCHLIST: Final = "trader_watchlist"
"""The followed traders, one document per address, ``_id`` = ``ethAddress`` = address: ``label``
(str or null), ``tags`` (list of str, for cohorts), ``origin`` (who owns the document, below),
``watching`` (false once a manual entry left the file), ``updatedAt``. The Dagster side joins
labels and tags into its tables.

Two writers, each touching only its own documents: the collector writes ``manual`` ones (the
watch-list file; a manual entry takes over an address Dagster listed, and a document without
``origin`` is manual); Dagster's ``trader_selection`` writes ``pin`` and ``selection`` ones (where
no manual entry with ``watching`` true holds the address) and deletes those it no longer lists.
With ``TRADER_WATCHLIST_SELECTION`` the collector follows the file plus every pin and selection
document."""

ORIGIN_MANUAL: Final = "manual"
ORIGIN_PIN: Final = "pin"
ORIGIN_SELECTION: Final = "selection"
LISTED_ORIGINS: Final = (ORIGIN_PIN, ORIGIN_SELECTION)
"""The origins Dagster's selection writes (and the collector reads)."""
MANUAL_OWNED: Final = {"origin": {"$nin": list(LISTED_ORIGINS)}}
"""Filter: the documents the collector may (re)write."""
LISTED_MAY_TAKE: Final = {"$or": [{"origin": {"$in": list(LISTED_ORIGINS)}}, {"watching": False}]}
"""Filter: the documents Dagster may (re)write: its own, and a manual entry no longer on the file."""

NODE_CHECKPOINTS: Final = "node_checkpoints"
"""How far the collector read each stream of a node's files (``NODE_DATA_DIR``), ``_id`` = the
stream (``order_statuses`` | ``fills`` | ``twap_statuses``): ``layout`` ("by_block" | "hourly"), ``path`` (the hour
file, relative to the data folder) and ``offset`` (bytes read, always at a line end),
``previousPath`` / ``previousOffset`` (the hour before, still read for late appends, or null),
``blockNumber`` / ``blockTime`` (the last block read; null in the hourly layout), ``updatedAt``.
Written only after every event read before it is in MongoDB; reading resumes there."""

NODE_WAITING: Final = "node_waiting"
"""Node lines of a trader being resynced, read (so behind the checkpoint) but not applied yet:
``user``, ``kind`` (the stream), ``raw`` (the event's JSON), ``block`` (null in the hourly
layout), ``at`` (its block's time), ``readAt``. Deleted once the resync applied them; a start reloads
them."""

ALERTS: Final = "order_alerts"
"""Large-change alerts written by the Dagster side, unique on ``alertKey``, each with its delivery
decision and per-channel delivery state (see docs/alerts.md)."""

COLLECTIONS: Final = (ORDERS, OPEN_ORDERS, FILLS, POSITIONS, ACCOUNTS, MARKS, TWAPS, WATCHLIST, RECOVERIES, UNCOVERED,
                      NODE_CHECKPOINTS, NODE_WAITING, ALERTS)
"""Every collection, in the order the documentation lists them (docs/collections.md is generated from
their docstrings above)."""

ACTION_NEW: Final = "new"
ACTION_UPDATED: Final = "updated"
ACTION_CLOSED: Final = "closed"
ACTIONS: Final = (ACTION_NEW, ACTION_UPDATED, ACTION_CLOSED)

STATUS_OPEN: Final = "open"
STATUS_CLOSED: Final = "closed"

MAIN_DEX: Final = ""
"""``dex`` of the first perp dex (and of spot orders)."""

MATCH_CLOID: Final = "cloid"
MATCH_INFERRED: Final = "inferred"

SOURCE_WS: Final = "ws"
SOURCE_REST: Final = "rest"
SOURCE_POLL: Final = "poll"
SOURCE_NODE: Final = "node"

FINAL_STATUS_CANCELED: Final = "canceled"
"""The final status of an order cancelled by its owner, and of every replaced order."""

FINAL_STATUS_UNKNOWN: Final = "unknown"
"""``finalStatus`` of a closed event whose outcome the exchange has not told us yet."""

DUPLICATE_KEY_ERROR: Final = 11000


def event_key(action: str, seq: int) -> str:
    """Return the per-order idempotency key of an event: ``new``, ``closed`` or ``updated:<seq>``."""
    return f"{action}:{seq}" if action == ACTION_UPDATED else action


def dex_of(coin: str) -> str:
    """The perp dex a coin trades on: ``"xyz"`` for a HIP-3 coin ``"xyz:TSLA"``, else ``""``
    (main-dex perps such as ``"BTC"`` and spot pairs such as ``"PURR/USDC"`` or ``"@107"``)."""
    dex, sep, _ = coin.partition(":")
    return dex if sep else MAIN_DEX


def open_order_id(eth_address: str, oid: int) -> str:
    """Return the ``_id`` of an order's document in :data:`OPEN_ORDERS`."""
    return f"{eth_address}:{oid}"


def account_id(eth_address: str, dex: str, server_time: datetime) -> str:
    """Return the ``_id`` of an account sample in :data:`ACCOUNTS` (its exchange time in ms)."""
    return f"{eth_address}:{dex}:{round(server_time.timestamp() * 1000)}"


# (keys, unique) pairs; keys are (field, direction) with 1 ascending and -1 descending.
IndexSpec = tuple[tuple[tuple[str, int], ...], bool]

ORDER_INDEXES: Final[tuple[IndexSpec, ...]] = (
    ((("ethAddress", 1), ("oid", 1), ("eventKey", 1)), True),
    ((("ethAddress", 1), ("oid", 1)), False),
    ((("oid", 1),), False),
    ((("ethAddress", 1), ("timestamp", -1)), False),
    ((("coin", 1), ("timestamp", -1)), False),
    ((("observedAt", 1),), False),
    ((("ethAddress", 1), ("observedAt", -1)), False),
    ((("action", 1), ("finalStatus", 1)), False),
    ((("linkedAt", 1),), False),
    ((("storedAt", 1),), False),
)

OPEN_ORDER_INDEXES: Final[tuple[IndexSpec, ...]] = (((("ethAddress", 1),), False),)

ACCOUNT_INDEXES: Final[tuple[IndexSpec, ...]] = (
    ((("ethAddress", 1), ("dex", 1), ("serverTime", 1)), True),
    ((("observedAt", 1),), False),
)

POSITION_INDEXES: Final[tuple[IndexSpec, ...]] = (
    ((("ethAddress", 1), ("coin", 1), ("serverTime", 1)), True),
    ((("observedAt", 1),), False),
)

FILL_INDEXES: Final[tuple[IndexSpec, ...]] = (
    ((("ethAddress", 1), ("oid", 1), ("tid", 1)), True),
    ((("ethAddress", 1), ("time", -1)), False),
    ((("time", 1),), False),
    ((("oid", 1),), False),
    ((("storedAt", 1),), False),
)

TWAP_INDEXES: Final[tuple[IndexSpec, ...]] = (
    ((("ethAddress", 1), ("twapId", 1), ("status", 1)), True),
    ((("statusTime", 1),), False),
    ((("storedAt", 1),), False),
)

ALERT_INDEXES: Final[tuple[IndexSpec, ...]] = (((("alertKey", 1),), True),)

INDEXES: Final[dict[str, tuple[IndexSpec, ...]]] = {
    ORDERS: ORDER_INDEXES,
    OPEN_ORDERS: OPEN_ORDER_INDEXES,
    POSITIONS: POSITION_INDEXES,
    ACCOUNTS: ACCOUNT_INDEXES,
    FILLS: FILL_INDEXES,
    TWAPS: TWAP_INDEXES,
    ALERTS: ALERT_INDEXES,
}


# The coverage plan ------------------------------------------------------------------------------
# What following N traders means, computed the same way by Dagster (before a list is applied, from
# the deployment described in trader_selection.toml [coverage]) and by the collector (/healthz,
# /metrics, from the list in force and its settings).

POSITIONS_EVERY: Final = 4
"""A polled trader's clearinghouseState (weight 2) is fetched at least every 4th poll."""
POLL_WEIGHT: Final = exchange.WEIGHT_DEFAULT + exchange.WEIGHT_LIGHT / POSITIONS_EVERY
"""Weight of one poll of a trader on the main dex only: frontendOpenOrders (20) and, on average, a
quarter of a clearinghouseState (2): 20.5. A trader active on HIP-3 dexes costs more per poll."""
POLL_BUDGET_SHARE: Final = 0.6
"""Default share of an egress address's REST weight per minute kept for polls (TRADER_POLL_BUDGET_SHARE)."""
POLL_MIN_INTERVAL_S: Final = 2.0
"""Default floor of a polled trader's refresh period (TRADER_POLL_MIN_INTERVAL)."""


@dataclass(frozen=True)
class Coverage:
    """What following ``traders`` means (all instances together; the per-address figures are the
    busiest address's)."""

    traders: int
    live: int
    """Traders streamed: on WebSocket slots, or every trader with a node's files as the source."""
    polled: int
    polled_per_address: int
    expected_period_s: float | None
    """Seconds between two polls of a polled trader; None when nobody is polled."""
    not_followed: int
    """Beyond the live slots with polling off."""
    max_poll_period_s: float | None

    @property
    def fresh(self) -> bool:
        """Everyone followed, and polled no slower than ``max_poll_period_s`` (when set)."""
        slow = (self.max_poll_period_s is not None and self.expected_period_s is not None
                and self.expected_period_s > self.max_poll_period_s)
        return not slow and not self.not_followed

    def figures(self) -> dict[str, float | None]:
        """For /healthz and Dagster metadata."""
        return {"traders": self.traders, "live": self.live, "polled": self.polled,
                "polled_per_address": self.polled_per_address,
                "expected_period_s": None if self.expected_period_s is None else round(self.expected_period_s, 1),
                "not_followed": self.not_followed, "max_poll_period_s": self.max_poll_period_s, "fresh": self.fresh}


def coverage(traders: int, *, addresses: int = 1, instances: int = 1, node: bool = False, poll: bool = True,
             users_per_address: int = exchange.MAX_USERS_PER_IP,
             weight_per_minute: float = exchange.REST_WEIGHT_PER_MINUTE, poll_share: float = POLL_BUDGET_SHARE,
             min_interval_s: float = POLL_MIN_INTERVAL_S, max_poll_period_s: float | None = None) -> Coverage:
    """The coverage plan of ``traders`` split evenly over ``instances`` collectors (shards), each
    with ``addresses`` egress addresses of its own. A node's files have no per-IP cap: every trader
    is live. Otherwise each address streams up to ``users_per_address`` traders and polls its share
    of the rest within ``poll_share`` of its weight per minute::

        expected period (s) = max(min_interval_s,
                                  polled per address x POLL_WEIGHT / (poll_share x weight_per_minute) x 60)

    (the polling tier's own estimate before it has measured its polls, ``Poller.expected_period_s``)."""
    if node:
        return Coverage(traders, traders, 0, 0, None, 0, max_poll_period_s)
    capacity = addresses * users_per_address  # live slots of one instance
    live = min(traders, instances * capacity)
    beyond = math.ceil(traders / instances) - capacity  # the busiest shard's traders beyond its slots
    per_address = math.ceil(beyond / addresses) if poll and beyond > 0 else 0
    period = max(min_interval_s, per_address * POLL_WEIGHT / (poll_share * weight_per_minute) * 60.0)
    return Coverage(traders, live, traders - live if poll else 0, per_address, period if per_address else None,
                    0 if poll else traders - live, max_poll_period_s)
