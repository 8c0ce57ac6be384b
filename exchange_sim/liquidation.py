"""Liquidation prices of cross positions, and liquidations when the mark crosses them.

The formula is Hyperliquid's documented one (official docs, "Liquidations"; the same as used by
third-party calculators, e.g. leverra-mcp's `liquidation_price`):

    liq_price = mark - side * margin_available / |szi| / (1 - l * side)

with `side` +1 long / -1 short, `l = 1 / maintenance leverage`, the maintenance margin half the
initial margin at the coin's max leverage (maintenance leverage = 2 x maxLeverage), and for cross
margin `margin_available = account value - maintenance margin required` (of the whole cross
account). The simulator has cross positions only. A long whose price would be <= 0 cannot be
liquidated: `liquidationPx` is null, as the exchange serves it (PROTOCOL.md §1.5).

A liquidation (when a mark move crosses a position's liquidation price): the exchange closes the
whole position at the mark with a taker order of tif `LiquidationMarket` (PROTOCOL.md §1.4) that
never rests; its fill carries `liquidation: {liquidatedUser, markPx, method: "market"}` (the key
set of NODE.md §2 / SAMPLE-NOTES §4; the values are INVENTED: no real capture of one is stored).
"""

from __future__ import annotations

from decimal import Decimal


def maintenance_margin(value: Decimal, max_leverage: int) -> Decimal:
    """Maintenance margin of a position worth `value` at the mark."""
    return value / (2 * max_leverage)


def liquidation_px(
    mark: Decimal, szi: Decimal, margin_available: Decimal, max_leverage: int
) -> Decimal | None:
    """The price at which this cross position is liquidated, or None when it cannot be."""
    if szi == 0:
        return None
    side = 1 if szi > 0 else -1
    l_inv = Decimal(1) / (2 * max_leverage)
    px = mark - side * margin_available / abs(szi) / (1 - l_inv * side)
    return px if px > 0 else None


def crossed(mark: Decimal, szi: Decimal, liq_px: Decimal | None) -> bool:
    """True when the mark reached the liquidation price (a long at or below, a short at or above)."""
    if liq_px is None or szi == 0:
        return False
    return mark <= liq_px if szi > 0 else mark >= liq_px


def liquidation_info(user: str, mark_px: str) -> dict[str, str]:
    """The `liquidation` object of the liquidated user's fill."""
    return {"liquidatedUser": user, "markPx": mark_px, "method": "market"}
