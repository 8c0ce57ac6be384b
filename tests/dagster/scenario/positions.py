"""The seeded ``trader_positions`` documents and their builder."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collector_service.schema import dex_of

from .base import D1, D2, D3, A, B, C, at


def position(
    addr: str, coin: str, szi: str, observed: datetime, entry: str = "100.0", *, old: bool = False
) -> dict[str, Any]:
    """A ``trader_positions`` document; ``old``: written before the collector stored ``dex``."""
    return {
        "ethAddress": addr,
        **({} if old else {"dex": dex_of(coin)}),
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
        position(C, "BTC", "0.5", at(D1, "21:00:00"), entry="50000.0"),
        position(C, "xyz:TSLA", "10.0", at(D2, "13:20:00"), entry="250.0", old=True),
    ]
