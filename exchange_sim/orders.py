"""The order record and its frontend-order serialization (the `frontendOpenOrders` shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchange_sim.market import dex_of, fmt
from exchange_sim.rules import LIVE_STATUSES


@dataclass
class Order:
    """One order as the exchange holds it; `sz` is the remaining size, `orig_sz` the placed size."""

    user: str
    oid: int
    coin: str
    side: str  # "B" buy / "A" sell
    limit_px: Decimal
    sz: Decimal
    orig_sz: Decimal
    timestamp: int
    order_type: str = "Limit"
    tif: str | None = "Gtc"
    reduce_only: bool = False
    is_trigger: bool = False
    trigger_px: Decimal = Decimal(0)
    trigger_condition: str = "N/A"
    is_position_tpsl: bool = False
    cloid: str | None = None
    children: list[int] = field(default_factory=list)
    parent: int | None = None
    status: str = "open"
    status_ts: int = 0

    @property
    def dex(self) -> str:
        """The perp dex whose feeds carry this order ("" for main-dex perps and spot)."""
        return dex_of(self.coin)

    @property
    def is_open(self) -> bool:
        """True while the order rests on the book (it appears in openOrders)."""
        return self.status in LIVE_STATUSES and self.status != "triggered"

    def frontend(self, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The order as a frontend order dict, keys ordered as in the real sample."""
        return {
            "children": children or [],
            "coin": self.coin,
            "isPositionTpsl": self.is_position_tpsl,
            "isTrigger": self.is_trigger,
            "limitPx": fmt(self.limit_px),
            "oid": self.oid,
            "orderType": self.order_type,
            "origSz": fmt(self.orig_sz),
            "reduceOnly": self.reduce_only,
            "side": self.side,
            "sz": fmt(self.sz),
            "tif": self.tif,
            "timestamp": self.timestamp,
            "triggerCondition": self.trigger_condition,
            "triggerPx": fmt(self.trigger_px),
            "cloid": self.cloid,
        }
