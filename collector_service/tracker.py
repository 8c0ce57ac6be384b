"""Order tracking: turn full-state snapshots of a trader's open orders into order events.

Hyperliquid pushes the whole set of open orders again and again, with no sequence numbers. The
tracker keeps the last state of every open order per trader and diffs each snapshot against
it: an order first seen is ``new``, a change of a tracked field is ``updated`` (a size decrease
with ``origSz`` unchanged is tagged as a partial fill), an order gone from the snapshot is
``closed``. Pure logic: no I/O, no clock; callers pass the times in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from sys import intern
from typing import Any

import msgspec
from msgspec.structs import astuple

from collector_service import schema
from collector_service.wire import FrontendOrder

TRACKED_FIELDS = ("sz", "limitPx", "triggerPx", "reduceOnly", "orderType", "tif", "isTrigger")
"""A change in any of these is an ``updated`` event (PROTOCOL.md §7.4)."""

_ORDER_FIELDS = (
    "coin", "side", "limitPx", "sz", "origSz", "triggerPx", "isTrigger", "reduceOnly",
    "isPositionTpsl", "orderType", "tif", "triggerCondition",
)


def ms_to_datetime(ms: int) -> datetime:
    """Exchange milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


class Tracked(msgspec.Struct, gc=False):
    """What the tracker remembers of one open order."""

    order: FrontendOrder
    seq: int
    parentOid: int | None = None


def flatten(orders: Iterable[FrontendOrder]) -> dict[int, tuple[FrontendOrder, int | None]]:
    """Every order in a snapshot by ``oid``, TP/SL children included once each.

    Children also appear top-level in real snapshots; the top-level copy wins and the child
    keeps a note of its parent.
    """
    found: dict[int, tuple[FrontendOrder, int | None]] = {}
    parents: list[FrontendOrder] = []
    for order in orders:
        found.setdefault(order.oid, (order, None))
        if order.children:
            parents.append(order)
    while parents:
        parent = parents.pop()
        for child in parent.children:
            known = found.get(child.oid)
            if known is None or known[1] is None:
                found[child.oid] = ((known or (child, None))[0], parent.oid)
            if child.children:
                parents.append(child)
    return found


def _intern(text: str | None) -> str | None:
    return None if text is None else intern(text)


def compact(order: FrontendOrder) -> FrontendOrder:
    """The order as the tracker keeps it: strings interned (coins, sides, types, "0.0" and
    price levels repeat across orders and traders) and no children (they are tracked under
    their own oid). Equal to the decoded order field for field, apart from ``children``."""
    sz = intern(order.sz)
    return msgspec.structs.replace(
        order,
        coin=intern(order.coin),
        side=intern(order.side),
        limitPx=intern(order.limitPx),
        sz=sz,
        origSz=sz if order.origSz == sz else _intern(order.origSz),
        triggerPx=_intern(order.triggerPx),
        orderType=_intern(order.orderType),
        tif=_intern(order.tif),
        triggerCondition=_intern(order.triggerCondition),
        children=(),
    )


def order_fields(order: FrontendOrder) -> dict[str, Any]:
    """The stored fields of an order (the wire's names, decimals kept as exact strings)."""
    doc = {name: getattr(order, name) for name in _ORDER_FIELDS}
    doc["oid"] = order.oid
    doc["timestamp"] = ms_to_datetime(order.timestamp)
    if order.cloid is not None:
        doc["cloid"] = order.cloid
    return doc


def order_from_doc(doc: Mapping[str, Any]) -> FrontendOrder:
    """Rebuild the tracked order from a stored document (used to reconcile after a restart)."""
    placed = doc["timestamp"]
    return FrontendOrder(
        coin=doc["coin"],
        side=doc["side"],
        limitPx=doc["limitPx"],
        sz=doc["sz"],
        oid=int(doc["oid"]),
        timestamp=int(placed.timestamp() * 1000) if isinstance(placed, datetime) else int(placed),
        origSz=doc.get("origSz"),
        triggerPx=doc.get("triggerPx"),
        isTrigger=bool(doc.get("isTrigger", False)),
        reduceOnly=bool(doc.get("reduceOnly", False)),
        isPositionTpsl=bool(doc.get("isPositionTpsl", False)),
        orderType=doc.get("orderType"),
        tif=doc.get("tif"),
        triggerCondition=doc.get("triggerCondition"),
        cloid=doc.get("cloid"),
    )


def build_event(
    user: str,
    order: FrontendOrder,
    action: str,
    seq: int,
    *,
    source: str,
    observed_at: datetime,
    server_time: datetime | None,
    parent_oid: int | None = None,
) -> dict[str, Any]:
    """One ``trader_orders`` document (see :mod:`collector_service.schema`)."""
    doc = order_fields(order)
    doc.update(
        ethAddress=user,
        eventKey=schema.event_key(action, seq),
        action=action,
        status=schema.STATUS_CLOSED if action == schema.ACTION_CLOSED else schema.STATUS_OPEN,
        seq=seq,
        source=source,
        observedAt=observed_at,
    )
    if server_time is not None:
        doc["serverTime"] = server_time
    if parent_oid is not None:
        doc["parentOid"] = parent_oid
    if action == schema.ACTION_CLOSED:
        doc["finalStatus"] = schema.FINAL_STATUS_UNKNOWN
    return doc


class OrderBook:
    """The open orders of one trader and the diff of each new snapshot against them."""

    __slots__ = ("last_server_ms", "last_snapshot", "orders", "user")

    def __init__(self, user: str) -> None:
        self.user = user
        self.orders: dict[int, Tracked] = {}
        self.last_snapshot: tuple[FrontendOrder, ...] | None = None
        self.last_server_ms: int | None = None

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Start from stored open orders (``trader_open_orders`` documents)."""
        for doc in docs:
            order = order_from_doc(doc)
            self.orders[order.oid] = Tracked(compact(order), int(doc.get("seq", 0)), doc.get("parentOid"))
        self.last_snapshot = None

    def is_stale(self, server_ms: int | None) -> bool:
        """True when a snapshot is older than the last one applied (frames have no sequence
        numbers; the exchange's clock is the only order there is)."""
        return server_ms is not None and self.last_server_ms is not None and server_ms < self.last_server_ms

    def apply(
        self,
        snapshot: tuple[FrontendOrder, ...],
        *,
        observed_at: datetime,
        server_ms: int | None = None,
        source: str = schema.SOURCE_WS,
    ) -> list[dict[str, Any]]:
        """Diff a full snapshot against the tracked state, update it, and return the events."""
        if server_ms is not None:
            self.last_server_ms = server_ms
        if snapshot == self.last_snapshot:
            return []
        server_time = ms_to_datetime(server_ms) if server_ms is not None else None
        current = flatten(snapshot)
        events: list[dict[str, Any]] = []
        tracked = self.orders
        for oid, (order, parent) in current.items():
            known = tracked.get(oid)
            if known is None:
                tracked[oid] = Tracked(compact(order), 0, parent)
                events.append(
                    build_event(self.user, order, schema.ACTION_NEW, 0, source=source,
                                observed_at=observed_at, server_time=server_time, parent_oid=parent)
                )
                continue
            old = known.order
            # the kept order has no children: a parent is unchanged when all else is equal
            if old == order or (order.children and astuple(old)[:-1] == astuple(order)[:-1]):
                continue
            changed = [name for name in TRACKED_FIELDS if getattr(old, name) != getattr(order, name)]
            known.order = compact(order)
            if not changed:
                continue
            known.seq += 1
            event = build_event(self.user, order, schema.ACTION_UPDATED, known.seq, source=source,
                                observed_at=observed_at, server_time=server_time,
                                parent_oid=known.parentOid)
            event["changes"] = changed
            event["prevSz"] = old.sz
            event["prevLimitPx"] = old.limitPx
            event["partialFill"] = is_partial_fill(old, order)
            events.append(event)
        for oid in [oid for oid in tracked if oid not in current]:
            gone = tracked.pop(oid)
            events.append(
                build_event(self.user, gone.order, schema.ACTION_CLOSED, gone.seq + 1, source=source,
                            observed_at=observed_at, server_time=server_time,
                            parent_oid=gone.parentOid)
            )
        # The snapshot compared against next time, rebuilt from the tracked (compact) orders:
        # it equals ``snapshot`` but shares their memory instead of holding a second copy.
        self.last_snapshot = tuple(self._kept(order) for order in snapshot)
        return events

    def _kept(self, order: FrontendOrder) -> FrontendOrder:
        kept = self.orders[order.oid].order
        if not order.children:
            return kept
        return msgspec.structs.replace(kept, children=tuple(self._kept(child) for child in order.children))


def is_partial_fill(old: FrontendOrder, new: FrontendOrder) -> bool:
    """A size decrease with the same original size and price: a partial fill, not an amend."""
    try:
        smaller = float(new.sz) < float(old.sz)
    except ValueError:
        return False
    return smaller and new.origSz == old.origSz and new.limitPx == old.limitPx
