"""Benchmark 1: the collector's per-frame hot path (decode + diff + event building, no I/O).

Inputs are a busy trader's open orders made by the exchange simulator's own trader model,
sent as ``openOrders`` frames and injected into the real ``webData2`` capture (~110 KB). Each
case is timed for an unchanged snapshot (the common case: the exchange re-pushes the same
state) and for snapshots with a few changes (alternating two states that differ by an amend,
a partial fill, a cancel and a new order). References run in the same process and rounds:
``json.loads``, ``orjson.loads``, the floor (a minimal ``msgspec`` decode of only the fields the
collector needs) and a naive collector written the obvious way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from benchmarks.measure import fmt_us, per_call
from benchmarks.report import Section
from collector_service import schema
from collector_service.events.positions import PositionBook
from collector_service.events.tracker import TRACKED_FIELDS, OrderBook
from collector_service.events.wire import NULL, OpenOrdersMsg, WebData2Msg, decode_frame
from exchange_sim.clock import LogicalClock
from exchange_sim.exchange import Exchange
from exchange_sim.market import Market
from exchange_sim.traders import Trader, trader_addresses

WEBDATA2_SAMPLE = (
    Path(__file__).parent.parent
    / "tests" / "fixtures" / "hyperliquid" / "webData2_ws_capture_subscribe_snapshot_unsubscribe.json"
)
START_MS = 1_750_000_000_000
OBSERVED_AT = datetime(2025, 6, 26, tzinfo=UTC)


# Inputs ------------------------------------------------------------------------------------


def busy_trader(min_open: int = 25, seed: int = 7) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """A trader's open orders before and after a few changes, from the simulator's trader model."""
    ex = Exchange(Market.load(), LogicalClock(START_MS))
    user = trader_addresses(seed, 1)[0]
    trader = Trader(user, seed, 0)
    while len(ex.open_orders(user)) < min_open:
        trader.act(ex)
        ex.clock.advance(500)
    before = ex.frontend_open_orders(user)
    resting = [o for o in ex.open_orders(user) if not o.is_trigger]
    ex.amend(resting[0].oid, limit_px=resting[0].limit_px * 2)
    ex.fill(resting[1].oid, resting[1].sz / 2)
    ex.cancel(resting[2].oid)
    ex.place(user, "ETH", "B", "1.5", "2000.0")
    return user, before, ex.frontend_open_orders(user)


def open_orders_bytes(user: str, orders: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"channel": "openOrders", "data": {"dex": "", "user": user, "orders": orders}})


def webdata2_bytes(user: str, orders: list[dict[str, Any]], server_time: int) -> bytes:
    frame = json.loads(WEBDATA2_SAMPLE.read_text())[1]
    frame["data"].update(user=user, openOrders=orders, serverTime=server_time)
    return orjson.dumps(frame)


# The floor: only the fields the collector needs ---------------------------------------------


class _Order(msgspec.Struct, gc=False):
    coin: str
    side: str
    limitPx: str
    sz: str
    oid: int
    timestamp: int
    origSz: str | None = None
    triggerPx: str | None = None
    isTrigger: bool = False
    reduceOnly: bool = False
    isPositionTpsl: bool = False
    orderType: str | None = None
    tif: str | None = None
    triggerCondition: str | None = None
    cloid: str | None = None
    children: list[_Order] = []


class _Leverage(msgspec.Struct, gc=False):
    type: str = "cross"
    value: int = 0


class _Position(msgspec.Struct, gc=False):
    coin: str
    szi: str
    entryPx: str | None = None
    positionValue: str | None = None
    unrealizedPnl: str | None = None
    returnOnEquity: str | None = None
    liquidationPx: str | None = None
    marginUsed: str | None = None
    leverage: _Leverage | None = None
    maxLeverage: int | None = None


class _AssetPosition(msgspec.Struct, gc=False):
    position: _Position


class _State(msgspec.Struct, gc=False):
    assetPositions: list[_AssetPosition] = []
    time: int | None = None


class _OpenOrdersData(msgspec.Struct, gc=False):
    user: str
    orders: list[_Order]


class _WebData2Data(msgspec.Struct, gc=False):
    user: str
    openOrders: list[_Order] = []
    clearinghouseState: _State | None = None
    serverTime: int | None = None


class _OpenOrdersFrame(msgspec.Struct, gc=False):
    data: _OpenOrdersData


class _WebData2Frame(msgspec.Struct, gc=False):
    data: _WebData2Data


FLOOR = {"openOrders": msgspec.json.Decoder(_OpenOrdersFrame), "webData2": msgspec.json.Decoder(_WebData2Frame)}


# The hot path --------------------------------------------------------------------------------


class HotPath:
    """What the collector does per frame: ``decode_frame``, then the trackers' ``apply_raw``."""

    def __init__(self, user: str) -> None:
        self.orders = OrderBook(user)
        self.positions = PositionBook(user)

    def __call__(self, raw: bytes) -> list[dict[str, Any]]:
        msg = decode_frame(raw)
        if isinstance(msg, WebData2Msg):
            data = msg.data
            events = self.orders.apply_raw(data.openOrders, observed_at=OBSERVED_AT, server_ms=data.serverTime)
            if data.clearinghouseState != NULL:
                events += self.positions.apply_raw(data.clearinghouseState, observed_at=OBSERVED_AT)
            return events
        assert isinstance(msg, OpenOrdersMsg)
        return self.orders.apply_raw(msg.data.orders, observed_at=OBSERVED_AT)


# The naive reference -------------------------------------------------------------------------

_STORED = ("coin", "side", "limitPx", "sz", "origSz", "triggerPx", "isTrigger", "reduceOnly",
           "isPositionTpsl", "orderType", "tif", "triggerCondition")


class Naive:
    """The obvious collector: ``json.loads`` everything, compare order dicts, build event dicts."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.orders: dict[int, dict[str, Any]] = {}
        self.seqs: dict[int, int] = {}
        self.parents: dict[int, int | None] = {}
        self.positions: dict[str, tuple[Any, ...]] = {}
        self.dex = ""

    def _event(self, order: dict[str, Any], action: str, seq: int, server_ms: int | None) -> dict[str, Any]:
        doc = {name: order.get(name) for name in _STORED}
        doc["isTrigger"] = bool(doc["isTrigger"])
        doc["reduceOnly"] = bool(doc["reduceOnly"])
        doc["isPositionTpsl"] = bool(doc["isPositionTpsl"])
        doc["oid"] = order["oid"]
        doc["timestamp"] = datetime.fromtimestamp(order["timestamp"] / 1000, UTC)
        if order.get("cloid") is not None:
            doc["cloid"] = order["cloid"]
        doc["ethAddress"] = self.user
        doc["dex"] = self.dex
        doc["eventKey"] = f"updated:{seq}" if action == "updated" else action
        doc["action"] = action
        doc["status"] = "closed" if action == "closed" else "open"
        doc["seq"] = seq
        doc["source"] = schema.SOURCE_WS
        doc["observedAt"] = OBSERVED_AT
        if server_ms is not None:
            doc["serverTime"] = datetime.fromtimestamp(server_ms / 1000, UTC)
        if self.parents.get(order["oid"]) is not None:
            doc["parentOid"] = self.parents[order["oid"]]
        if action == "closed":
            doc["finalStatus"] = schema.FINAL_STATUS_UNKNOWN
        return doc

    def __call__(self, raw: bytes) -> list[dict[str, Any]]:
        frame = json.loads(raw)
        data = frame["data"]
        if frame["channel"] == "webData2":
            orders, server_ms, self.dex = data["openOrders"], data.get("serverTime"), ""
        else:
            orders, server_ms, self.dex = data["orders"], None, data.get("dex", "")
        current: dict[int, dict[str, Any]] = {}
        parent_of: dict[int, int] = {}
        stack = list(orders)
        for order in orders:
            current.setdefault(order["oid"], order)
        while stack:
            parent = stack.pop()
            for child in parent.get("children", []):
                current.setdefault(child["oid"], child)
                parent_of.setdefault(child["oid"], parent["oid"])
                stack.append(child)
        events = []
        before = dict(self.orders)
        appeared: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for oid, order in current.items():
            old = self.orders.get(oid)
            if old is None:
                self.orders[oid], self.seqs[oid], self.parents[oid] = order, 0, parent_of.get(oid)
                events.append(self._event(order, "new", 0, server_ms))
                appeared.append((order, events[-1]))
                continue
            changed = [name for name in TRACKED_FIELDS if old.get(name) != order.get(name)]
            self.orders[oid] = order
            if changed:
                self.seqs[oid] += 1
                event = self._event(order, "updated", self.seqs[oid], server_ms)
                sz_down = float(order["sz"]) < float(old["sz"])
                event.update(changes=changed, prevSz=old["sz"], prevLimitPx=old["limitPx"],
                             partialFill=sz_down and order.get("origSz") == old.get("origSz")
                             and order["limitPx"] == old["limitPx"])
                events.append(event)
        vanished: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for oid in [oid for oid in self.orders if oid not in current]:
            gone = self.orders.pop(oid)
            events.append(self._event(gone, "closed", self.seqs.pop(oid) + 1, server_ms))
            vanished.append((gone, events[-1]))
            self.parents.pop(oid, None)
        self._link(before, current, appeared, vanished)
        if frame["channel"] == "webData2" and data.get("clearinghouseState") is not None:
            events += self._positions(data["clearinghouseState"])
        return events

    @staticmethod
    def _link(before: dict[int, dict[str, Any]], current: dict[int, dict[str, Any]],
              appeared: list[tuple[dict[str, Any], dict[str, Any]]],
              vanished: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """A modify is a cancel-and-replace: link by cloid (against every order before and now),
        else infer the only vanished/appeared pair of one coin, side, type, reduce-only flag and tif."""
        for order, event in appeared:
            if order.get("cloid"):
                older = [o for o, kept in before.items() if kept.get("cloid") == order["cloid"] and o < order["oid"]]
                if older:
                    event.update(replacesOid=max(older), replaceMatch="cloid")
        for order, event in vanished:
            if order.get("cloid"):
                newer = [o for o, now in current.items() if now.get("cloid") == order["cloid"] and o > order["oid"]]
                if newer:
                    event.update(replacedByOid=min(newer), replaceMatch="cloid")

        def key(o: dict[str, Any]) -> tuple[Any, ...]:
            return (o["coin"], o["side"], o.get("orderType"), bool(o.get("reduceOnly")), o.get("tif"))

        for k in {key(o) for o, _ in vanished if not o.get("cloid")}:
            gone = [(o, e) for o, e in vanished if not o.get("cloid") and key(o) == k]
            new = [(o, e) for o, e in appeared if not o.get("cloid") and key(o) == k]
            if len(gone) == 1 and len(new) == 1:
                (old, closed), (order, placed) = gone[0], new[0]
                if order["oid"] > old["oid"] and order["timestamp"] >= old["timestamp"]:
                    closed.update(replacedByOid=order["oid"], replaceMatch="inferred")
                    placed.update(replacesOid=old["oid"], replaceMatch="inferred")

    def _positions(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        docs, seen = [], set()
        for asset in state.get("assetPositions", []):
            p = asset["position"]
            lev = p.get("leverage") or {}
            key = (p["szi"], p.get("entryPx"), lev.get("type"), lev.get("value"))
            seen.add(p["coin"])
            if self.positions.get(p["coin"]) != key:
                self.positions[p["coin"]] = key
                docs.append({"ethAddress": self.user, "coin": p["coin"], "szi": p["szi"]})
        for coin in [c for c in self.positions if c not in seen]:
            del self.positions[coin]
            docs.append({"ethAddress": self.user, "coin": coin, "szi": "0.0"})
        return docs


# The benchmark -------------------------------------------------------------------------------


def _alternating(fn: Callable[[bytes], Any], a: bytes, b: bytes) -> Callable[[], Any]:
    frames = [a, b]
    state = [0]

    def call() -> Any:
        state[0] ^= 1
        return fn(frames[state[0]])

    return call


def _comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Order events reduced to what the naive reference builds (positions keep a short form)."""
    keyed = []
    for e in events:
        if "oid" in e:
            keyed.append(tuple(sorted((k, repr(v)) for k, v in e.items())))
        else:
            keyed.append((("coin", e["coin"]), ("szi", e["szi"])))
    return sorted(keyed)


def agree(feed: str, user: str, a: bytes, b: bytes) -> bool:
    """The hot path and the naive reference emit the same events over a sequence of frames."""
    hot, naive = HotPath(user), Naive(user)
    return all(_comparable(hot(raw)) == _comparable(naive(raw)) for raw in (a, a, b, b, a, b))


def run(quick: bool = False) -> Section:
    section = Section("frames", "1. Frame hot path (decode + diff + events, no I/O)")
    user, before, after = busy_trader()
    n_orders = sum(1 + len(o["children"]) for o in before)
    frames = {
        "openOrders": (open_orders_bytes(user, before), open_orders_bytes(user, after)),
        "webData2": (webdata2_bytes(user, before, START_MS), webdata2_bytes(user, after, START_MS + 1)),
    }
    number, repeat = (50, 5) if quick else (400, 15)
    for feed, (a, b) in frames.items():
        if not agree(feed, user, a, b):
            section.checks[f"{feed}_naive_agrees"] = False
            continue
        section.checks[f"{feed}_naive_agrees"] = True
        floor = FLOOR[feed]
        hot_same, naive_same = HotPath(user), Naive(user)
        hot_same(a), naive_same(a)
        hot_changed, naive_changed = HotPath(user), Naive(user)
        t = per_call(
            {
                "json": lambda a=a: json.loads(a),
                "orjson": lambda a=a: orjson.loads(a),
                "floor": lambda a=a, floor=floor: floor.decode(a),
                "floor_changed": _alternating(floor.decode, a, b),
                "hot_unchanged": lambda a=a, h=hot_same: h(a),
                "hot_changed": _alternating(hot_changed, a, b),
                "naive_unchanged": lambda a=a, n=naive_same: n(a),
                "naive_changed": _alternating(naive_changed, a, b),
            },
            number=max(1, number // (4 if feed == "webData2" else 1)),
            repeat=repeat,
        )
        label = f"{feed} ({len(a) / 1000:.0f} KB, {n_orders} orders)"
        section.add(f"{label}: json.loads / orjson.loads", f"{fmt_us(t['json'])} / {fmt_us(t['orjson'])}")
        section.add(f"{label}: floor (msgspec, needed fields)", fmt_us(t["floor"]))
        section.add(f"{label}: hot path unchanged / changed",
                    f"{fmt_us(t['hot_unchanged'])} / {fmt_us(t['hot_changed'])}")
        section.add(f"{label}: naive unchanged / changed",
                    f"{fmt_us(t['naive_unchanged'])} / {fmt_us(t['naive_changed'])}")
        section.ratio(f"{feed} unchanged: hot / floor", t["hot_unchanged"] / t["floor"], at_most=1.2)
        section.ratio(f"{feed} changed: hot / floor", t["hot_changed"] / t["floor_changed"], at_most=2.0)
        section.ratio(f"{feed} unchanged: naive / hot", t["naive_unchanged"] / t["hot_unchanged"], at_least=10)
        section.ratio(f"{feed} changed: naive / hot", t["naive_changed"] / t["hot_changed"], at_least=10)
        section.ratio(f"{feed}: json.loads / hot unchanged", t["json"] / t["hot_unchanged"])
    section.notes.append(
        "changed = two snapshots alternating (amend, partial fill, cancel, new order: ~4 events per frame); "
        f"medians of {repeat} interleaved rounds"
    )
    return section
