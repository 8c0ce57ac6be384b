"""The expected end-of-day snapshots of both days: ``open_orders_snapshot`` and ``positions_snapshot`` rows."""

from __future__ import annotations

from .base import D1, D2, A, B, C, at, dec

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
    "dex",
]
OPEN_ORDERS_D1 = [
    (A, 101, "BTC", "B", dec("60000"), dec("2"), dec("2"), 120000.0, at(D1, "22:00:00"), at(D1, "22:00:05"), None, ""),
    (C, 300, "BTC", "B", dec("50000"), dec("1"), dec("1"), 50000.0, at(D1, "20:00:00"), at(D1, "20:00:00"), None, ""),
]
OPEN_ORDERS_D2 = [
    (B, 202, "SOL", "B", dec("200"), dec("30"), dec("50"), 6000.0, at(D2, "13:00:00"), at(D2, "13:10:00"), None, ""),
    (
        C,
        331,
        "SOL",
        "B",
        dec("200"),
        dec("600"),
        dec("600"),
        120000.0,
        at(D2, "11:30:00"),
        at(D2, "11:30:00"),
        None,
        "",
    ),
]

POSITION_COLS = ["ethAddress", "dex", "coin", "szi", "side", "entryPx", "updatedAt"]
POSITIONS_D1 = [
    (A, "", "BTC", dec("1"), "long", dec("59000"), at(D1, "20:00:00")),
    (A, "", "ETH", dec("5"), "long", dec("3000"), at(D1, "23:00:00")),
    (C, "", "BTC", dec("0.5"), "long", dec("50000"), at(D1, "21:00:00")),
]
POSITIONS_D2 = [
    (A, "", "ETH", dec("5"), "long", dec("3000"), at(D1, "23:00:00")),
    (B, "", "SOL", dec("-20"), "short", dec("200"), at(D2, "13:10:00")),
    (C, "", "BTC", dec("0.5"), "long", dec("50000"), at(D1, "21:00:00")),
    (C, "xyz", "xyz:TSLA", dec("10"), "long", dec("250"), at(D2, "13:20:00")),  # an old document: dex from the coin
]
