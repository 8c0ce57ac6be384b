"""A hand-built two-day scenario of collector documents, and the tables worked out by hand.

Days: D1 = 2026-11-23, D2 = 2026-11-24 (UTC); one event on D3 must never show up.
Trader A: 100 canceled on D1; 101 spans D1->D2 (partial fill then filled); 103 is 101's TP/SL
child canceled when 101 filled; 102 amended (price, then size across the alert threshold) and
canceled; 104 closed with status still unknown.
Trader B: 201 known only from a REST-recovered close (filled, sz "0.0"); 202 partially filled,
its update has no observedAt (falls back to createdAt), still open at D2's end (closes on D3);
203 rejected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

D1, D2, D3 = "2026-11-23", "2026-11-24", "2026-11-25"
A = "0x" + "a" * 40
B = "0x" + "b" * 40


def at(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=UTC)


def order(
    addr: str,
    oid: int,
    action: str,
    seq: int,
    observed: datetime | None,
    *,
    coin: str,
    side: str,
    sz: str,
    px: str,
    placed: datetime,
    created: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``trader_orders`` document as the collector writes it."""
    doc: dict[str, Any] = {
        "ethAddress": addr,
        "oid": oid,
        "eventKey": f"updated:{seq}" if action == "updated" else action,
        "action": action,
        "status": "closed" if action == "closed" else "open",
        "seq": seq,
        "source": "ws",
        "coin": coin,
        "side": side,
        "orderType": "Limit",
        "tif": "Gtc",
        "triggerCondition": "N/A",
        "limitPx": px,
        "sz": sz,
        "origSz": sz,
        "triggerPx": "0.0",
        "isTrigger": False,
        "reduceOnly": False,
        "isPositionTpsl": False,
        "timestamp": placed,
        "observedAt": observed,
        "serverTime": observed,
        "createdAt": created or (observed + timedelta(seconds=1) if observed else None),
    }
    if observed is None:
        del doc["observedAt"], doc["serverTime"]
    doc.update(extra)
    return doc


def orders() -> list[dict[str, Any]]:
    t101 = at(D1, "22:00:00")
    t103 = at(D2, "00:30:00")
    t102 = at(D2, "09:00:00")
    return [
        # placed and canceled on D1.
        order(
            A, 100, "new", 0, at(D1, "10:00:00"), coin="ETH", side="B", sz="1.0", px="3000.0", placed=at(D1, "10:00:00")
        ),
        order(
            A,
            100,
            "closed",
            1,
            at(D1, "10:05:00"),
            coin="ETH",
            side="B",
            sz="1.0",
            px="3000.0",
            placed=at(D1, "10:00:00"),
            finalStatus="canceled",
            statusTimestamp=at(D1, "10:04:59"),
        ),
        # spans two days.
        order(
            A,
            101,
            "new",
            0,
            at(D1, "22:00:05"),
            coin="BTC",
            side="B",
            sz="2.0",
            px="60000.0",
            placed=t101,
            cloid="0x" + "1" * 32,
        ),
        order(
            A,
            101,
            "updated",
            1,
            at(D2, "01:00:00"),
            coin="BTC",
            side="B",
            sz="1.5",
            px="60000.0",
            placed=t101,
            origSz="2.0",
            changes=["sz"],
            partialFill=True,
            prevSz="2.0",
            prevLimitPx="60000.0",
        ),
        order(
            A,
            101,
            "closed",
            2,
            at(D2, "02:00:00"),
            coin="BTC",
            side="B",
            sz="1.5",
            px="60000.0",
            placed=t101,
            origSz="2.0",
            finalStatus="filled",
            statusTimestamp=at(D2, "01:59:59"),
        ),
        # TP/SL child of 101.
        order(
            A,
            103,
            "new",
            0,
            t103,
            coin="BTC",
            side="A",
            sz="2.0",
            px="65000.0",
            placed=t103,
            orderType="Take Profit Market",
            tif=None,
            triggerCondition="Price above 65000",
            triggerPx="65000.0",
            isTrigger=True,
            reduceOnly=True,
            parentOid=101,
        ),
        order(
            A,
            103,
            "closed",
            1,
            at(D2, "02:00:01"),
            coin="BTC",
            side="A",
            sz="2.0",
            px="65000.0",
            placed=t103,
            orderType="Take Profit Market",
            tif=None,
            triggerPx="65000.0",
            isTrigger=True,
            reduceOnly=True,
            parentOid=101,
            finalStatus="siblingFilledCanceled",
            statusTimestamp=at(D2, "02:00:00"),
        ),
        # amend price, amend size across the threshold, cancel.
        order(A, 102, "new", 0, t102, coin="ETH", side="A", sz="10.0", px="3000.0", placed=t102),
        order(
            A,
            102,
            "updated",
            1,
            at(D2, "09:30:00"),
            coin="ETH",
            side="A",
            sz="10.0",
            px="3100.0",
            placed=t102,
            changes=["limitPx"],
            partialFill=False,
            prevSz="10.0",
            prevLimitPx="3000.0",
        ),
        order(
            A,
            102,
            "updated",
            2,
            at(D2, "10:00:00"),
            coin="ETH",
            side="A",
            sz="40.0",
            px="3100.0",
            placed=t102,
            origSz="40.0",
            changes=["sz", "origSz"],
            partialFill=False,
            prevSz="10.0",
            prevLimitPx="3100.0",
        ),
        order(
            A,
            102,
            "closed",
            3,
            at(D2, "10:30:00"),
            coin="ETH",
            side="A",
            sz="40.0",
            px="3100.0",
            placed=t102,
            origSz="40.0",
            finalStatus="canceled",
            statusTimestamp=at(D2, "10:30:00"),
        ),
        # closed, status not resolved yet.
        order(
            A, 104, "new", 0, at(D2, "14:30:00"), coin="SOL", side="B", sz="5.0", px="200.0", placed=at(D2, "14:30:00")
        ),
        order(
            A,
            104,
            "closed",
            1,
            at(D2, "15:00:00"),
            coin="SOL",
            side="B",
            sz="5.0",
            px="200.0",
            placed=at(D2, "14:30:00"),
            finalStatus="unknown",
        ),
        # B-201: only a close, recovered over REST (REST reports a filled order with sz 0).
        order(
            B,
            201,
            "closed",
            1,
            at(D2, "12:00:00"),
            coin="HYPE",
            side="B",
            sz="0.0",
            px="1.5",
            placed=at(D2, "11:50:00"),
            origSz="100.0",
            source="rest",
            finalStatus="filled",
            statusTimestamp=at(D2, "11:55:00"),
        ),
        # B-202: partial fill whose document lacks observedAt; closes on D3.
        order(
            B, 202, "new", 0, at(D2, "13:00:00"), coin="SOL", side="B", sz="50.0", px="200.0", placed=at(D2, "13:00:00")
        ),
        order(
            B,
            202,
            "updated",
            1,
            None,
            coin="SOL",
            side="B",
            sz="30.0",
            px="200.0",
            placed=at(D2, "13:00:00"),
            origSz="50.0",
            created=at(D2, "13:10:00"),
            changes=["sz"],
            partialFill=True,
            prevSz="50.0",
            prevLimitPx="200.0",
        ),
        order(
            B,
            202,
            "closed",
            2,
            at(D3, "01:00:00"),
            coin="SOL",
            side="B",
            sz="30.0",
            px="200.0",
            placed=at(D2, "13:00:00"),
            origSz="50.0",
            finalStatus="filled",
        ),
        # B-203: rejected.
        order(
            B,
            203,
            "new",
            0,
            at(D2, "14:00:00"),
            coin="DOGE",
            side="A",
            sz="100.0",
            px="0.05",
            placed=at(D2, "14:00:00"),
            tif="Alo",
        ),
        order(
            B,
            203,
            "closed",
            1,
            at(D2, "14:00:01"),
            coin="DOGE",
            side="A",
            sz="100.0",
            px="0.05",
            placed=at(D2, "14:00:00"),
            tif="Alo",
            finalStatus="minTradeNtlRejected",
        ),
    ]


def position(addr: str, coin: str, szi: str, observed: datetime, entry: str = "100.0") -> dict[str, Any]:
    return {
        "ethAddress": addr,
        "coin": coin,
        "szi": szi,
        "entryPx": entry,
        "positionValue": "1000.0",
        "unrealizedPnl": "12.5",
        "returnOnEquity": "0.05",
        "liquidationPx": None,
        "marginUsed": "100.0",
        "leverageType": "cross",
        "leverage": 10,
        "maxLeverage": 50,
        "serverTime": observed,
        "observedAt": observed,
        "createdAt": observed + timedelta(seconds=1),
        "source": "ws",
    }


def positions() -> list[dict[str, Any]]:
    return [
        position(A, "BTC", "1.0", at(D1, "20:00:00"), entry="59000.0"),
        position(A, "BTC", "0.0", at(D2, "02:00:00"), entry="59000.0"),
        position(A, "ETH", "5.0", at(D1, "23:00:00"), entry="3000.0"),
        position(A, "ETH", "6.0", at(D3, "01:00:00"), entry="3000.0"),
        position(B, "SOL", "-20.0", at(D2, "13:10:00"), entry="200.0"),
    ]


def dec(s: str) -> Decimal:
    return Decimal(s)


# Expected tables -------------------------------------------------------------------------
LIFECYCLE_COLS = [
    "ethAddress",
    "oid",
    "coin",
    "side",
    "orderType",
    "parentOid",
    "placedAt",
    "firstSeenAt",
    "closedAt",
    "finalStatus",
    "outcome",
    "durationS",
    "nUpdates",
    "nPriceChanges",
    "origSz",
    "lastSz",
    "filledSz",
    "maxNotionalUsd",
    "recovered",
]


def _lc(*values: Any) -> dict[str, Any]:
    row = dict(zip(LIFECYCLE_COLS, values, strict=True))
    for k in ("origSz", "lastSz", "filledSz"):
        row[k] = dec(row[k])
    return row


LIFECYCLES_D1 = [
    _lc(
        A,
        100,
        "ETH",
        "B",
        "Limit",
        None,
        at(D1, "10:00:00"),
        at(D1, "10:00:00"),
        at(D1, "10:05:00"),
        "canceled",
        "canceled",
        300.0,
        0,
        0,
        "1",
        "1",
        "0",
        3000.0,
        False,
    ),
    _lc(
        A,
        101,
        "BTC",
        "B",
        "Limit",
        None,
        at(D1, "22:00:00"),
        at(D1, "22:00:05"),
        None,
        None,
        "open",
        7200.0,
        0,
        0,
        "2",
        "2",
        "0",
        120000.0,
        False,
    ),
]

LIFECYCLES_D2 = [
    _lc(
        A,
        101,
        "BTC",
        "B",
        "Limit",
        None,
        at(D1, "22:00:00"),
        at(D1, "22:00:05"),
        at(D2, "02:00:00"),
        "filled",
        "filled",
        14400.0,
        1,
        0,
        "2",
        "1.5",
        "2",
        120000.0,
        False,
    ),
    _lc(
        A,
        102,
        "ETH",
        "A",
        "Limit",
        None,
        at(D2, "09:00:00"),
        at(D2, "09:00:00"),
        at(D2, "10:30:00"),
        "canceled",
        "canceled",
        5400.0,
        2,
        1,
        "10",
        "40",
        "0",
        124000.0,
        False,
    ),
    _lc(
        A,
        103,
        "BTC",
        "A",
        "Take Profit Market",
        101,
        at(D2, "00:30:00"),
        at(D2, "00:30:00"),
        at(D2, "02:00:01"),
        "siblingFilledCanceled",
        "canceled",
        5401.0,
        0,
        0,
        "2",
        "2",
        "0",
        130000.0,
        False,
    ),
    _lc(
        A,
        104,
        "SOL",
        "B",
        "Limit",
        None,
        at(D2, "14:30:00"),
        at(D2, "14:30:00"),
        at(D2, "15:00:00"),
        "unknown",
        "unknown",
        1800.0,
        0,
        0,
        "5",
        "5",
        "0",
        1000.0,
        False,
    ),
    _lc(
        B,
        201,
        "HYPE",
        "B",
        "Limit",
        None,
        at(D2, "11:50:00"),
        at(D2, "12:00:00"),
        at(D2, "12:00:00"),
        "filled",
        "filled",
        600.0,
        0,
        0,
        "100",
        "0",
        "100",
        0.0,
        True,
    ),
    _lc(
        B,
        202,
        "SOL",
        "B",
        "Limit",
        None,
        at(D2, "13:00:00"),
        at(D2, "13:00:00"),
        None,
        None,
        "open",
        39600.0,
        1,
        0,
        "50",
        "30",
        "20",
        10000.0,
        False,
    ),
    _lc(
        B,
        203,
        "DOGE",
        "A",
        "Limit",
        None,
        at(D2, "14:00:00"),
        at(D2, "14:00:00"),
        at(D2, "14:00:01"),
        "minTradeNtlRejected",
        "rejected",
        1.0,
        0,
        0,
        "100",
        "100",
        "0",
        5.0,
        False,
    ),
]

ALERT_COLS = ["alertKey", "eventAt", "reason", "notionalBeforeUsd", "notionalAfterUsd", "finalStatus"]
ALERTS_D1 = [
    (f"{A}:101:new", at(D1, "22:00:05"), "large_order", 0.0, 120000.0, None),
]
ALERTS_D2 = [
    (f"{A}:103:new", at(D2, "00:30:00"), "large_order", 0.0, 130000.0, None),
    (f"{A}:103:closed", at(D2, "02:00:01"), "large_close", 130000.0, 0.0, "siblingFilledCanceled"),
    (f"{A}:102:updated:2", at(D2, "10:00:00"), "crossed_threshold,large_change", 31000.0, 124000.0, None),
    (f"{A}:102:closed", at(D2, "10:30:00"), "large_close", 124000.0, 0.0, "canceled"),
]

OPEN_ORDER_COLS = [
    "ethAddress",
    "oid",
    "coin",
    "side",
    "limitPx",
    "sz",
    "origSz",
    "notionalUsd",
    "placedAt",
    "lastEventAt",
    "parentOid",
]
OPEN_ORDERS_D1 = [
    (A, 101, "BTC", "B", dec("60000"), dec("2"), dec("2"), 120000.0, at(D1, "22:00:00"), at(D1, "22:00:05"), None)
]
OPEN_ORDERS_D2 = [
    (B, 202, "SOL", "B", dec("200"), dec("30"), dec("50"), 6000.0, at(D2, "13:00:00"), at(D2, "13:10:00"), None)
]

POSITION_COLS = ["ethAddress", "coin", "szi", "side", "entryPx", "updatedAt"]
POSITIONS_D1 = [
    (A, "BTC", dec("1"), "long", dec("59000"), at(D1, "20:00:00")),
    (A, "ETH", dec("5"), "long", dec("3000"), at(D1, "23:00:00")),
]
POSITIONS_D2 = [
    (A, "ETH", dec("5"), "long", dec("3000"), at(D1, "23:00:00")),
    (B, "SOL", dec("-20"), "short", dec("200"), at(D2, "13:10:00")),
]

STATS_COLS = [
    "ethAddress",
    "nEvents",
    "ordersPlaced",
    "ordersAmended",
    "ordersFilled",
    "ordersCanceled",
    "ordersRejected",
    "openOrdersAtEnd",
    "cancelRatio",
    "medianTimeToFillS",
    "medianTimeToCancelS",
    "notionalPlacedUsd",
    "coinsTraded",
    "coins",
]
STATS_D1 = [(A, 3, 2, 0, 0, 1, 0, 1, 0.5, None, 300.0, 123000.0, 2, ["BTC", "ETH"])]
STATS_D2 = [
    (A, 10, 3, 1, 1, 2, 0, 0, 2 / 3, 14400.0, 5400.5, 161000.0, 3, ["BTC", "ETH", "SOL"]),
    (B, 5, 2, 0, 1, 0, 1, 1, 0.0, 600.0, None, 10005.0, 3, ["DOGE", "HYPE", "SOL"]),
]
