"""The exchange's state machine: orders, fills, positions and order history per user.

Pure logic with no I/O: every order transition is reported to a listener (the ground-truth
recorder) and every user-visible change bumps the user's version (the push scheduler). The
accounts it changes (positions, balances, fills, history) and their arithmetic are in
:mod:`exchange_sim.accounts`.

Markets: main-dex perps, spot pairs (served with the first perp dex, no positions) and HIP-3
perp dexes (coins "xyz:TSLA"; their orders and positions are served per dex). Order history,
orderStatus and fills are per user across all dexes.

A modify is a cancel-and-replace, as on mainnet (PROTOCOL.md §4.3, NODE.md §2.4): the amended
order rests under a NEW oid with the same cloid and the old oid ends "canceled". A partial
fill keeps the oid (sz down, origSz unchanged); a trigger keeps its oid through "triggered".
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from exchange_sim import liquidation, rules
from exchange_sim.accounts import UserState, clearinghouse_state, fill_fee, move_position
from exchange_sim.clock import LogicalClock
from exchange_sim.market import MAIN_DEX, Market, dex_of, fmt
from exchange_sim.orders import Order

TransitionListener = Callable[[str, str, dict[str, Any], int], None]
"""Called as listener(user, status, frontend_order, time_ms) for every order transition."""
ReplaceListener = Callable[[str, int, int, int], None]
"""Called as listener(user, old_oid, new_oid, time_ms) just before a replacement's `open`."""
FillListener = Callable[[str, dict[str, Any]], None]
"""Called as listener(user, fill) for every fill, with the fill dict in the REST userFills shape
(the same object the user's fill list holds: do not modify it)."""

OID_START = 300_000_000_000  # the size of real oids in 2026 samples (~3.2e11)
TID_START = 900_000_000_000_000
ZERO_HASH = "0x" + "0" * 64
WS_BASIC_ORDER_KEYS = ("coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz", "cloid")
"""The order fields of an orderUpdates element (WsBasicOrder, PROTOCOL.md §1.6), in that order."""


class OrderError(ValueError):
    """A scripted action that the exchange cannot perform (unknown oid, closed order...)."""


class Exchange:
    """Holds every user's orders and positions and applies placements, amends, fills and cancels."""

    def __init__(
        self,
        market: Market,
        clock: LogicalClock,
        *,
        oid_start: int = OID_START,
        modify_keeps_oid: bool = False,
    ) -> None:
        self.market = market
        self.clock = clock
        # False (mainnet): a modify is a cancel-and-replace under a new oid. True: the old
        # in-place amend (same oid, one "open" line) to test collectors against that case.
        self.modify_keeps_oid = modify_keeps_oid
        self.users: dict[str, UserState] = {}
        self.orders: dict[int, Order] = {}
        self.by_cloid: dict[tuple[str, str], int] = {}
        self._next_oid = oid_start
        self._next_tid = TID_START
        self.listeners: list[TransitionListener] = []
        self.replace_listeners: list[ReplaceListener] = []
        self.fill_listeners: list[FillListener] = []
        self.replaced: dict[int, int] = {}  # new oid -> the oid it replaced
        self.change_listeners: list[Callable[[str], None]] = []
        self.status_counts: dict[str, int] = {}

    # ----- queries -------------------------------------------------------------------------
    def user(self, address: str) -> UserState:
        """The state of `address` (lower-cased), created empty on first use."""
        address = address.lower()
        st = self.users.get(address)
        if st is None:
            st = self.users[address] = UserState(address)
        return st

    def open_orders(self, address: str, dex: str | None = None) -> list[Order]:
        """The user's resting orders, newest first (as frontendOpenOrders lists them).

        `dex` None: every dex; `""`: the first perp dex (main perps and spot); else one HIP-3 dex.
        """
        st = self.users.get(address.lower())
        if st is None:
            return []
        orders = (self.orders[o] for o in st.open_oids)
        if dex is not None:
            orders = (o for o in orders if dex_of(o.coin) == dex)
        return sorted(orders, key=lambda o: o.oid, reverse=True)

    def frontend_open_orders(self, address: str, dex: str = MAIN_DEX) -> list[dict[str, Any]]:
        """The frontendOpenOrders list of one dex: TP/SL children are top-level AND in `children`.

        Dex `""` lists main-dex perp and spot orders ("Spot open orders are only included with
        the first perp dex"); a HIP-3 dex lists only its own coins' orders.
        """
        out = []
        for o in self.open_orders(address, dex):
            kids = [self.orders[c].frontend() for c in sorted(o.children) if self.orders[c].is_open]
            out.append(o.frontend(kids))
        return out

    def get(self, oid: int) -> Order:
        """The order with this oid, or OrderError."""
        try:
            return self.orders[oid]
        except KeyError:
            raise OrderError(f"unknown oid {oid}") from None

    # ----- transitions ---------------------------------------------------------------------
    def _emit(self, order: Order, status: str, ts: int, *, record_history: bool) -> None:
        fo = order.frontend()
        st = self.user(order.user)
        if record_history:
            st.history.append({"order": fo, "status": status, "statusTimestamp": ts})
        st.updates.append({"order": {k: fo[k] for k in WS_BASIC_ORDER_KEYS}, "status": status, "statusTimestamp": ts})
        st.updates_total += 1
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        for listener in self.listeners:
            listener(order.user, status, fo, ts)

    def touch(self, user: str) -> None:
        """Note a user-visible change made outside the order book (a TWAP's state): bump the
        user's version so its feeds are pushed."""
        self._changed(user)

    def _changed(self, user: str) -> None:
        st = self.user(user)
        st.version += 1
        for cb in self.change_listeners:
            cb(st.address)

    def _new_oid(self) -> int:
        self._next_oid += 1
        return self._next_oid

    def place(
        self,
        user: str,
        coin: str,
        side: str,
        sz: Decimal | str | float,
        limit_px: Decimal | str | float,
        *,
        tif: str | None = "Gtc",
        reduce_only: bool = False,
        trigger_px: Decimal | str | float | None = None,
        tpsl: str | None = None,
        tp_px: Decimal | str | float | None = None,
        sl_px: Decimal | str | float | None = None,
        cloid: str | None = None,
        reject_status: str | None = None,
        fill_immediately: bool = False,
    ) -> Order:
        """Place an order (with optional TP/SL children); a `reject_status` makes it never rest.

        A trigger order needs `trigger_px` and `tpsl` ("tp" or "sl"). An Ioc order never rests:
        it is filled at once if `fill_immediately`, else ends as iocCancelRejected.
        """
        if side not in ("B", "A"):
            raise OrderError(f"side must be 'B' or 'A', not {side!r}")
        info = self.market.coin(coin)
        if info.dex != MAIN_DEX and info.dex not in self.market.dexes:
            raise OrderError(f"unknown perp dex {info.dex!r} (coin {coin!r})")
        if info.spot and (reduce_only or tp_px is not None or sl_px is not None):
            raise OrderError(f"reduce-only and TP/SL are perp concepts, not for spot coin {coin!r}")
        user = user.lower()
        now = self.clock.stamp()
        order = Order(
            user=user,
            oid=self._new_oid(),
            coin=coin,
            side=side,
            limit_px=Decimal(str(limit_px)),
            sz=Decimal(str(sz)),
            orig_sz=Decimal(str(sz)),
            timestamp=now,
            tif=tif,
            reduce_only=reduce_only,
            cloid=cloid,
            status_ts=now,
        )
        if trigger_px is not None:
            self._make_trigger(order, Decimal(str(trigger_px)), tpsl or "sl")
        self.orders[order.oid] = order
        if cloid:
            self.by_cloid[(user, cloid.lower())] = order.oid
        if reject_status is not None:
            self._close(order, reject_status, now, resting=False)
            return order
        if tif == "Ioc" and not order.is_trigger:
            if fill_immediately:
                self._apply_fill(order, order.sz, order.limit_px, crossed=True, ts=now)
                order.sz = Decimal(0)
                self._close(order, rules.FILLED, now, resting=False)
            else:
                self._close(order, rules.IOC_CANCEL_REJECTED, now, resting=False)
            self._changed(user)
            return order
        self._rest(order, now)
        close_side = "A" if side == "B" else "B"
        for kind, px in (("tp", tp_px), ("sl", sl_px)):
            if px is None:
                continue
            child = Order(
                user=user,
                oid=self._new_oid(),
                coin=coin,
                side=close_side,
                limit_px=Decimal(0),
                sz=order.orig_sz,
                orig_sz=order.orig_sz,
                timestamp=now,
                tif=None,
                reduce_only=True,
                parent=order.oid,
                status_ts=now,
            )
            self._make_trigger(child, Decimal(str(px)), kind)
            self.orders[child.oid] = child
            order.children.append(child.oid)
            self._rest(child, now)
        self._changed(user)
        return order

    def _make_trigger(self, order: Order, trigger_px: Decimal, tpsl: str) -> None:
        order.is_trigger = True
        order.tif = None
        order.trigger_px = trigger_px
        above = (tpsl == "tp") == (order.side == "A")
        order.trigger_condition = f"Price {'above' if above else 'below'} {fmt(trigger_px)}"
        order.order_type = "Take Profit Market" if tpsl == "tp" else "Stop Market"
        if order.limit_px == 0:
            # Market triggers carry a 10 % slippage limit price, as the frontend sets it.
            slip = Decimal("0.9") if order.side == "A" else Decimal("1.1")
            order.limit_px = self.market.round_px(self.market.coin(order.coin), trigger_px * slip)

    def _rest(self, order: Order, ts: int) -> None:
        order.status, order.status_ts = rules.OPEN, ts
        self.user(order.user).open_oids[order.oid] = None
        self._emit(order, rules.OPEN, ts, record_history=True)

    def _close(self, order: Order, status: str, ts: int, *, resting: bool = True) -> None:
        order.status, order.status_ts = status, ts
        self.user(order.user).open_oids.pop(order.oid, None)
        self._emit(order, status, ts, record_history=True)

    def _open(self, oid: int) -> Order:
        order = self.get(oid)
        if not order.is_open:
            raise OrderError(f"order {oid} is {order.status}, not open")
        return order

    def amend(
        self,
        oid: int,
        *,
        sz: Decimal | str | float | None = None,
        limit_px: Decimal | str | float | None = None,
    ) -> Order:
        """Modify size and/or price of a resting order; returns the order now resting.

        Mainnet behaviour (default): cancel-and-replace. A replacement with a new oid, the same
        cloid (None stays None) and every other field of the old order rests with sz = origSz =
        the new sz (or the old remaining sz if only the price changes) and timestamp = now; its
        `open` is emitted first, then the old order's `canceled`, both at the same time.
        With `modify_keeps_oid` the order is amended in place (same oid, one `open` line).
        """
        order = self._open(oid)
        ts = self.clock.stamp()
        new_sz = order.sz if sz is None else Decimal(str(sz))
        new_px = order.limit_px if limit_px is None else Decimal(str(limit_px))
        if self.modify_keeps_oid:
            order.sz = order.orig_sz = new_sz
            order.limit_px = new_px
            order.status_ts = ts
            self._emit(order, rules.OPEN, ts, record_history=False)
            self._changed(order.user)
            return order
        new = replace(
            order,
            oid=self._new_oid(),
            sz=new_sz,
            orig_sz=new_sz,
            limit_px=new_px,
            timestamp=ts,
            children=list(order.children),
            status=rules.OPEN,
            status_ts=ts,
        )
        self.orders[new.oid] = new
        self.replaced[new.oid] = order.oid
        if new.cloid:
            self.by_cloid[(new.user, new.cloid.lower())] = new.oid  # the newest order with it
        # TP/SL children move to the replacement and keep their own oids. UNVERIFIED: no source
        # says what mainnet does with a bracket's children when the parent is modified.
        for c in new.children:
            self.orders[c].parent = new.oid
        order.children = []
        if order.parent is not None:  # a modified TP/SL child takes its old place in the bracket
            siblings = self.orders[order.parent].children
            siblings[siblings.index(order.oid)] = new.oid
        for listener in self.replace_listeners:
            listener(new.user, order.oid, new.oid, ts)
        self._rest(new, ts)
        self._close(order, rules.CANCELED, ts)
        self._changed(order.user)
        return new

    def fill(
        self,
        oid: int,
        sz: Decimal | str | float | None = None,
        px: Decimal | str | float | None = None,
        *,
        crossed: bool = False,
    ) -> Order:
        """Fill `sz` (default: all that remains) of a resting order; a full fill closes it.

        Each call makes one fill; a resting order filled by the market is a maker
        (`crossed` False, maker fee) unless `crossed` says otherwise."""
        order = self._open(oid)
        if order.is_trigger:
            return self.trigger(oid)
        amount = order.sz if sz is None else min(order.sz, Decimal(str(sz)))
        ts = self.clock.stamp()
        if order.reduce_only:
            pos = self.user(order.user).positions.get(order.coin)
            reducing = pos is not None and pos.szi != 0 and (pos.szi > 0) == (order.side == "A")
            if pos is None or not reducing:
                self._close(order, rules.REDUCE_ONLY_CANCELED, ts)
                self._close_children(order, rules.CANCELED, ts)
                self._changed(order.user)
                return order
            amount = min(amount, abs(pos.szi))
        fill_px = order.limit_px if px is None else Decimal(str(px))
        self._apply_fill(order, amount, fill_px, crossed=crossed, ts=ts)
        order.sz -= amount
        if order.sz <= 0:
            order.sz = Decimal(0)
            self._close(order, rules.FILLED, ts)
            # Children of a filled parent stay open as standalone TP/SL orders.
        else:
            order.status_ts = ts
            self._emit(order, rules.OPEN, ts, record_history=False)
        self._changed(order.user)
        return order

    def trigger(self, oid: int) -> Order:
        """Fire a trigger order: triggered, then filled at triggerPx; the sibling is canceled."""
        order = self._open(oid)
        if not order.is_trigger:
            raise OrderError(f"order {oid} is not a trigger order")
        if order.parent is not None and self.orders[order.parent].is_open:
            raise OrderError(f"order {oid} waits for its parent {order.parent} to fill")
        ts = self.clock.stamp()
        self._close(order, rules.TRIGGERED, ts)
        pos = self.user(order.user).positions.get(order.coin)
        amount = order.sz
        if order.reduce_only:
            amount = min(amount, abs(pos.szi)) if pos else Decimal(0)
        ts = self.clock.stamp()
        if amount > 0:
            self._apply_fill(order, amount, order.trigger_px, crossed=True, ts=ts)
        order.sz = Decimal(0)
        self._close(order, rules.FILLED if amount > 0 else rules.REDUCE_ONLY_CANCELED, ts)
        if order.parent is not None:
            for sib in self.orders[order.parent].children:
                if sib != oid and self.orders[sib].is_open:
                    self._close(self.orders[sib], rules.SIBLING_FILLED_CANCELED, self.clock.stamp())
        self._changed(order.user)
        return order

    def cancel(self, oid: int, status: str = rules.CANCELED) -> Order:
        """Cancel a resting order with the given final status; its TP/SL children go with it."""
        order = self._open(oid)
        ts = self.clock.stamp()
        self._close(order, status, ts)
        self._close_children(order, rules.CANCELED, ts)
        self._changed(order.user)
        return order

    def _close_children(self, order: Order, status: str, ts: int) -> None:
        for c in order.children:
            child = self.orders[c]
            if child.is_open:
                self._close(child, status, self.clock.stamp())

    # ----- fills and positions -------------------------------------------------------------
    def _apply_fill(
        self, order: Order, sz: Decimal, px: Decimal, *, crossed: bool, ts: int, twap_id: int | None = None,
        liquidation: dict[str, str] | None = None,
    ) -> None:
        st = self.user(order.user)
        coin = self.market.coin(order.coin)
        if coin.spot:
            self._apply_spot_fill(st, order, sz, px, crossed=crossed, ts=ts, twap_id=twap_id)
            return
        start, direction, closed_pnl = move_position(st, order.coin, order.side, sz, px)
        fee = fill_fee(sz, px, crossed)
        if coin.dex == MAIN_DEX:
            st.realized += closed_pnl - fee
        else:
            st.dex_realized[coin.dex] = st.dex_realized.get(coin.dex, Decimal(0)) + closed_pnl - fee
        self._record_fill(st, order, sz, px, start, direction, closed_pnl, fee, crossed=crossed, ts=ts,
                          twap_id=twap_id, liquidation=liquidation)

    def _apply_spot_fill(
        self, st: UserState, order: Order, sz: Decimal, px: Decimal, *, crossed: bool, ts: int, twap_id: int | None
    ) -> None:
        """A spot fill moves the base-token balance, never a perp position."""
        start = st.spot_balances.get(order.coin, Decimal(0))
        st.spot_balances[order.coin] = start + (sz if order.side == "B" else -sz)
        fee = fill_fee(sz, px, crossed)
        direction = "Buy" if order.side == "B" else "Sell"
        self._record_fill(st, order, sz, px, start, direction, Decimal(0), fee, crossed=crossed, ts=ts, twap_id=twap_id)

    def _record_fill(
        self,
        st: UserState,
        order: Order,
        sz: Decimal,
        px: Decimal,
        start: Decimal,
        direction: str,
        closed_pnl: Decimal,
        fee: Decimal,
        *,
        crossed: bool,
        ts: int,
        twap_id: int | None,
        liquidation: dict[str, str] | None = None,
    ) -> None:
        self._next_tid += 1
        tid = self._next_tid
        fill: dict[str, Any] = {
            "coin": order.coin,
            "px": fmt(px),
            "sz": fmt(sz),
            "side": order.side,
            "time": ts,
            "startPosition": fmt(start),
            "dir": direction,
            "closedPnl": fmt(closed_pnl),
            # TWAP slice fills carry a zero hash (SAMPLE-NOTES §3)
            "hash": ZERO_HASH if twap_id is not None else "0x" + hashlib.sha256(f"fill:{tid}".encode()).hexdigest(),
            "oid": order.oid,
            "crossed": crossed,
            "fee": fmt(fee),
            "tid": tid,
        }
        if order.cloid:
            fill["cloid"] = order.cloid  # only when set, after tid (node fills output)
        if liquidation is not None:
            fill["liquidation"] = liquidation  # only on a liquidated user's fill (exchange_sim.liquidation)
        fill["feeToken"] = "USDC"
        fill["twapId"] = twap_id
        st.fills.append(fill)
        st.fills_total += 1
        for listener in self.fill_listeners:
            listener(st.address, fill)

    def twap_slice(self, user: str, coin: str, side: str, sz: Decimal, px: Decimal, twap_id: int) -> dict[str, Any]:
        """One TWAP slice: a taker fill of an order that never rests and writes no status line
        (SAMPLE-NOTES §3), with `twapId` and a zero hash; returns the fill."""
        now = self.clock.stamp()
        order = Order(user=user.lower(), oid=self._new_oid(), coin=coin, side=side, limit_px=px, sz=sz, orig_sz=sz,
                      timestamp=now, order_type="Twap Slice", tif="Ioc", status=rules.FILLED, status_ts=now)
        self._apply_fill(order, sz, px, crossed=True, ts=now, twap_id=twap_id)
        self._changed(order.user)
        return self.user(order.user).fills[-1]

    def mark_moved(self, coin: str) -> list[Order]:
        """The mark of `coin` moved: its holders' states changed (value, PnL, liquidation
        distance), and those it pushed past their liquidation price are liquidated."""
        for st in list(self.users.values()):
            if coin in st.positions:
                self._changed(st.address)
        return self.liquidate_crossed(coin)

    def liquidate_crossed(self, coin: str) -> list[Order]:
        """Liquidate every position in `coin` whose liquidation price the mark reached: closed
        whole at the mark by a `LiquidationMarket` order whose fill carries `liquidation`
        (exchange_sim.liquidation). Returns the liquidation orders."""
        info = self.market.coin(coin)
        done = []
        for st in list(self.users.values()):
            pos = st.positions.get(coin)
            if pos is None:
                continue
            held = next(p["position"] for p in self.clearinghouse_state(st.address, dex=info.dex)["assetPositions"]
                        if p["position"]["coin"] == coin)
            liq = held["liquidationPx"]
            if not liquidation.crossed(info.mark_px, pos.szi, None if liq is None else Decimal(liq)):
                continue
            now = self.clock.stamp()
            size = abs(pos.szi)
            order = Order(user=st.address, oid=self._new_oid(), coin=coin, side="A" if pos.szi > 0 else "B",
                          limit_px=info.mark_px, sz=size, orig_sz=size, timestamp=now, order_type="Market",
                          tif="LiquidationMarket", reduce_only=True, status_ts=now)
            self.orders[order.oid] = order
            self._apply_fill(order, size, info.mark_px, crossed=True, ts=now,
                             liquidation=liquidation.liquidation_info(st.address, fmt(info.mark_px)))
            order.sz = Decimal(0)
            self._close(order, rules.FILLED, now, resting=False)
            self._changed(st.address)
            done.append(order)
        return done

    def clearinghouse_state(self, address: str, time_ms: int | None = None, dex: str = MAIN_DEX) -> dict[str, Any]:
        """The user's clearinghouseState of one perp dex in the real REST shape (see
        :func:`exchange_sim.accounts.clearinghouse_state`)."""
        now = self.clock.now_ms() if time_ms is None else time_ms
        return clearinghouse_state(self.user(address), self.market, dex, now)

    # ----- info-style views ----------------------------------------------------------------
    # Assumption (no source says otherwise): orderStatus, historicalOrders, userFills and
    # userFillsByTime are per user across all dexes (main perps, spot and every HIP-3 dex).
    def order_status(self, address: str, oid: int | str) -> dict[str, Any]:
        """The orderStatus response for an oid or a cloid (its newest order) of this user."""
        address = address.lower()
        if isinstance(oid, str):
            found = self.by_cloid.get((address, oid.lower()))
            if found is None:
                return {"status": "unknownOid"}
            oid = found
        order = self.orders.get(oid)
        if order is None or order.user != address:
            return {"status": "unknownOid"}
        return {
            "status": "order",
            "order": {
                "order": order.frontend(),
                "status": order.status,
                "statusTimestamp": order.status_ts,
            },
        }

    def historical_orders(self, address: str) -> list[dict[str, Any]]:
        """The newest 2000 status entries, newest first; an oid may appear more than once."""
        return list(reversed(self.user(address).history))

    def user_fills(self, address: str) -> list[dict[str, Any]]:
        """The newest 2000 fills, newest first."""
        fills = self.user(address).fills
        return [fills[i] for i in range(len(fills) - 1, max(-1, len(fills) - 1 - rules.USER_FILLS_LIMIT), -1)]

    def fills_after(self, address: str, seen: int) -> tuple[list[dict[str, Any]], int]:
        """The user's fills made after the first `seen` ones, oldest first, and how many fills the
        user has made in all (pass it as `seen` next time). Fills no longer retained are skipped."""
        st = self.user(address)
        return _after(st.fills, st.fills_total, seen), st.fills_total

    def updates_after(self, address: str, seen: int) -> tuple[list[dict[str, Any]], int]:
        """The user's orderUpdates elements after the first `seen` status changes, oldest first,
        and how many were ever made (as :meth:`fills_after`)."""
        st = self.user(address)
        return _after(st.updates, st.updates_total, seen), st.updates_total

    def user_fills_by_time(self, address: str, start: int, end: int | None = None) -> list[dict[str, Any]]:
        """Fills with start <= time <= end, oldest first, at most 2000 (paginate on time)."""
        out = []
        for f in self.user(address).fills:
            if f["time"] >= start and (end is None or f["time"] <= end):
                out.append(f)
                if len(out) >= rules.USER_FILLS_LIMIT:
                    break
        return out


def _after(items: deque[dict[str, Any]], total: int, seen: int) -> list[dict[str, Any]]:
    """The newest ``total - seen`` of ``items`` (a deque of the newest of ``total`` ever made)
    that it still holds, oldest first."""
    new = min(total - seen, len(items))
    return [items[i] for i in range(len(items) - new, len(items))] if new > 0 else []

