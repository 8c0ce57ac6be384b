"""A user's account on the simulated exchange: its orders' ids, positions, balances, fills and
order history (:class:`UserState`), what a fill does to a position and costs, and the
``clearinghouseState`` view of it.

Pure data and arithmetic with no I/O, used by :class:`~exchange_sim.exchange.Exchange`. Each
perp dex has its own clearinghouse (cross margin): the main dex's balance is the deposit plus
realized PnL, a HIP-3 dex's is :data:`STARTING_BALANCE` plus its realized PnL once the user
traded there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchange_sim import liquidation, rules
from exchange_sim.market import MAIN_DEX, Market, dex_of, fmt

STARTING_BALANCE = Decimal("10000.0")
DEFAULT_LEVERAGE = 5

@dataclass
class Position:
    """A one-way position in one coin; `szi` is signed (negative = short)."""

    coin: str
    szi: Decimal = Decimal(0)
    entry_px: Decimal = Decimal(0)
    cum_funding: Decimal = Decimal(0)

@dataclass
class UserState:
    """Everything the exchange knows about one address."""

    address: str
    open_oids: dict[int, None] = field(default_factory=dict)  # insertion-ordered set
    positions: dict[str, Position] = field(default_factory=dict)
    fills: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=rules.FILLS_RETAINED))
    fills_total: int = 0  # fills ever made (the deque keeps only the newest FILLS_RETAINED)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=rules.HISTORICAL_ORDERS_LIMIT))
    # every status change as orderUpdates frames carry it, and how many were ever made
    updates: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=rules.ORDER_UPDATES_RETAINED))
    updates_total: int = 0
    deposit: Decimal = STARTING_BALANCE  # main-dex USDC before PnL (a scripted whale has more)
    realized: Decimal = Decimal(0)  # main-dex realized PnL minus fees
    # HIP-3 dexes have their own clearinghouse: realized PnL per dex, present once the user
    # traded there (the simulator then credits STARTING_BALANCE, as if USDC had been moved in).
    dex_realized: dict[str, Decimal] = field(default_factory=dict)
    # Spot base-token balances changed by spot fills; not enforced (may go negative).
    spot_balances: dict[str, Decimal] = field(default_factory=dict)
    version: int = 0

def clearinghouse_state(st: UserState, market: Market, dex: str, time_ms: int) -> dict[str, Any]:
    """The user's clearinghouseState of one perp dex in the real REST shape.

    Each dex has its own clearinghouse: dex `""` shows main-dex perp positions only, a HIP-3
    dex only its coins' positions (spot never makes positions). A HIP-3 dex the user never
    traded on is all zeros.
    """
    if dex == MAIN_DEX:
        balance = st.deposit + st.realized
    elif dex in st.dex_realized:
        balance = STARTING_BALANCE + st.dex_realized[dex]
    else:
        balance = Decimal(0)
    positions: list[dict[str, Any]] = []
    ntl = upnl_total = margin = raw_pos = maintenance = Decimal(0)
    for pos in st.positions.values():
        if dex_of(pos.coin) != dex:
            continue
        coin = market.coin(pos.coin)
        lev = min(DEFAULT_LEVERAGE, coin.max_leverage)
        value = abs(pos.szi) * coin.mark_px
        upnl = pos.szi * (coin.mark_px - pos.entry_px)
        used = value / lev
        maintenance += liquidation.maintenance_margin(value, coin.max_leverage)
        ntl += value
        upnl_total += upnl
        margin += used
        raw_pos += pos.szi * coin.mark_px
        init = abs(pos.szi) * pos.entry_px / lev
        positions.append(
            {
                "type": "oneWay",
                "position": {
                    "coin": pos.coin,
                    "szi": fmt(pos.szi),
                    "leverage": {"type": "cross", "value": lev},
                    "entryPx": fmt(pos.entry_px.quantize(Decimal("0.000001")).normalize()),
                    "positionValue": fmt(value.quantize(Decimal("0.000001"))),
                    "unrealizedPnl": fmt(upnl.quantize(Decimal("0.000001"))),
                    "returnOnEquity": fmt((upnl / init).quantize(Decimal("0.0000000001"))) if init else "0.0",
                    "liquidationPx": None,
                    "marginUsed": fmt(used.quantize(Decimal("0.000001"))),
                    "maxLeverage": coin.max_leverage,
                    "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                },
            }
        )
    account = balance + upnl_total
    q = Decimal("0.000001")
    for entry in positions:  # cross margin: what the whole account has left above maintenance
        held = entry["position"]
        info = market.coin(held["coin"])
        liq = liquidation.liquidation_px(info.mark_px, Decimal(held["szi"]), account - maintenance,
                                         info.max_leverage)
        held["liquidationPx"] = None if liq is None else fmt(market.round_px(info, liq))
    summary = {
        "accountValue": fmt(account.quantize(q)),
        "totalNtlPos": fmt(ntl.quantize(q)),
        "totalRawUsd": fmt((account - raw_pos).quantize(q)),
        "totalMarginUsed": fmt(margin.quantize(q)),
    }
    return {
        "marginSummary": summary,
        "crossMarginSummary": dict(summary),
        "crossMaintenanceMarginUsed": fmt(maintenance.quantize(q)),
        "withdrawable": fmt(max(Decimal(0), account - margin).quantize(q)),
        "assetPositions": positions,
        "time": time_ms,
    }


def move_position(st: UserState, coin: str, side: str, sz: Decimal, px: Decimal) -> tuple[Decimal, str, Decimal]:
    """Apply a perp fill of ``sz`` at ``px`` to the user's one-way position in ``coin``: its size
    before the fill, the fill's ``dir`` and the PnL it realized (0 unless it reduced the position)."""
    pos = st.positions.setdefault(coin, Position(coin))
    start = pos.szi
    signed = sz if side == "B" else -sz
    closed_pnl = Decimal(0)
    if start == 0 or (start > 0) == (signed > 0):
        new = start + signed
        pos.entry_px = (abs(start) * pos.entry_px + sz * px) / abs(new)
        direction = "Open Long" if new > 0 else "Open Short"
    else:
        closing = min(abs(start), sz)
        closed_pnl = closing * (px - pos.entry_px) * (1 if start > 0 else -1)
        new = start + signed
        if new != 0 and (new > 0) != (start > 0):
            pos.entry_px = px
            direction = "Long > Short" if start > 0 else "Short > Long"
        else:
            direction = "Close Long" if start > 0 else "Close Short"
    pos.szi = new
    if new == 0:
        pos.entry_px = Decimal(0)
        del st.positions[coin]
    return start, direction, closed_pnl


def fill_fee(sz: Decimal, px: Decimal, crossed: bool) -> Decimal:
    """The fee of a fill: taker rate if it crossed the book, maker rate if it rested."""
    rate = rules.TAKER_FEE_RATE if crossed else rules.MAKER_FEE_RATE
    return (sz * px * Decimal(rate)).quantize(Decimal("0.000001"))
