"""Order tracking: turn full-state snapshots of a trader's open orders into order events.

Hyperliquid pushes the whole set of open orders again and again, with no sequence numbers. The
tracker keeps the last state of every open order per trader and diffs each snapshot against
it: an order first seen is ``new``, a change of a tracked field is ``updated`` (a size decrease
with ``origSz`` unchanged is tagged as a partial fill), an order gone from the snapshot is
``closed``. Pure logic: no I/O, no clock; callers pass the times in.

Two things keep it cheap. Frames arrive with each order still raw JSON, and each order's bytes
get a 128-bit digest (xxh3): a snapshot whose digests all match the previous one's (most pushes
repeat the last state byte for byte) costs no typed decoding at all, and in one that changed
only the orders whose bytes changed are decoded. And each open order is
kept as one packed ``bytes`` value (its sequence number and parent, then its fields in msgpack),
about 200 bytes with its dict entry instead of a kilobyte of Python objects, so a collector can
track millions of open orders. (xxh3-128 digests stand in for byte comparisons: two different
snapshots of the same trader colliding is a 2^-128 event.)
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec.structs import astuple
from xxhash import xxh3_128_digest

from collector_service import schema
from collector_service.wire import FrontendOrder, OrderItems, decode_order, decode_orders

TRACKED_FIELDS = ("sz", "limitPx", "triggerPx", "reduceOnly", "orderType", "tif", "isTrigger")
"""A change in any of these is an ``updated`` event (PROTOCOL.md §7.4)."""

def ms_to_datetime(ms: int) -> datetime:
    """Exchange milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


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


_STATE_PREFIX = struct.Struct("<Iq")  # seq, parentOid (-1: none)
_encode = msgspec.msgpack.Encoder().encode
_decode_fields = msgspec.msgpack.Decoder(tuple).decode


def pack_fields(order: FrontendOrder) -> bytes:
    """Every field of an order but its children, packed (children are tracked by their own oid)."""
    return _encode(astuple(order)[:-1])


def pack_state(fields: bytes, seq: int, parent: int | None) -> bytes:
    """What the tracker keeps of one open order."""
    return _STATE_PREFIX.pack(seq, -1 if parent is None else parent) + fields


def unpack_state(state: bytes) -> tuple[FrontendOrder, int, int | None]:
    """The order, its last event's ``seq`` and its parent's oid, from :func:`pack_state`."""
    seq, parent = _STATE_PREFIX.unpack_from(state)
    order = FrontendOrder(*_decode_fields(memoryview(state)[_STATE_PREFIX.size :]))
    return order, seq, None if parent < 0 else parent


def same_fields(state: bytes, fields: bytes) -> bool:
    """Whether a kept order has exactly these packed fields."""
    return len(state) - _STATE_PREFIX.size == len(fields) and state.endswith(fields)


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
    # a literal, not a loop over field names: this runs for every event on the hot path
    doc = {
        "coin": order.coin, "side": order.side, "limitPx": order.limitPx, "sz": order.sz,
        "origSz": order.origSz, "triggerPx": order.triggerPx, "isTrigger": order.isTrigger,
        "reduceOnly": order.reduceOnly, "isPositionTpsl": order.isPositionTpsl, "orderType": order.orderType,
        "tif": order.tif, "triggerCondition": order.triggerCondition, "oid": order.oid,
        "timestamp": ms_to_datetime(order.timestamp), "ethAddress": user,
        "eventKey": schema.event_key(action, seq), "action": action,
        "status": schema.STATUS_CLOSED if action == schema.ACTION_CLOSED else schema.STATUS_OPEN,
        "seq": seq, "source": source, "observedAt": observed_at,
    }
    if order.cloid is not None:
        doc["cloid"] = order.cloid
    if server_time is not None:
        doc["serverTime"] = server_time
    if parent_oid is not None:
        doc["parentOid"] = parent_oid
    if action == schema.ACTION_CLOSED:
        doc["finalStatus"] = schema.FINAL_STATUS_UNKNOWN
    return doc


_DIGEST = 16
_NO_OIDS = array("q")


class OrderBook:
    """The open orders of one trader and the diff of each new snapshot against them."""

    __slots__ = ("item_digests", "item_oids", "last_server_ms", "orders", "user")

    def __init__(self, user: str) -> None:
        self.user = user
        self.orders: dict[int, bytes] = {}
        self.item_digests: bytes | None = None  # the last raw snapshot's order digests, 16 bytes each
        self.item_oids = _NO_OIDS  # ... and their oids, in the same positions
        self.last_server_ms: int | None = None

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Start from stored open orders (``trader_open_orders`` documents)."""
        for doc in docs:
            order = order_from_doc(doc)
            self.orders[order.oid] = pack_state(pack_fields(order), int(doc.get("seq", 0)), doc.get("parentOid"))
        self.item_digests, self.item_oids = None, _NO_OIDS

    def is_stale(self, server_ms: int | None) -> bool:
        """True when a snapshot is older than the last one applied (frames have no sequence
        numbers; the exchange's clock is the only order there is)."""
        return server_ms is not None and self.last_server_ms is not None and server_ms < self.last_server_ms

    def apply_raw(
        self,
        items: OrderItems,
        *,
        observed_at: datetime,
        server_ms: int | None = None,
        source: str = schema.SOURCE_WS,
    ) -> list[dict[str, Any]]:
        """Diff a snapshot whose orders are still raw JSON, decoding only those whose bytes changed.

        Raises :class:`~collector_service.wire.FrameError` when an order that must be read does not
        decode.
        """
        if server_ms is not None:
            self.last_server_ms = server_ms
        digests = [xxh3_128_digest(item) for item in items]
        joined = b"".join(digests)
        previous, previous_oids = self.item_digests, self.item_oids
        if joined == previous:
            return []
        previous = previous or b""
        oids: list[int] = []
        unchanged: set[int] = set()
        changed: list[FrontendOrder] = []
        for i, item_digest in enumerate(digests):
            at = i * _DIGEST
            if not previous.startswith(item_digest, at):
                at = previous.find(item_digest)
                while at > 0 and at % _DIGEST:  # a match must start on a digest boundary
                    at = previous.find(item_digest, at + 1)
            # a kept oid is negative for an order with children: it is always decoded, since
            # only its own copy says which children it still has
            oid = previous_oids[at // _DIGEST] if at >= 0 else -1
            if oid > 0:
                unchanged.add(oid)
                oids.append(oid)
            else:
                order = decode_order(items[i])
                changed.append(order)
                oids.append(-order.oid if order.children else order.oid)
        duplicated = len(set(map(abs, oids))) < len(oids)
        if duplicated:  # an oid listed twice: the full diff decides which copy counts
            changed, unchanged = list(decode_orders(items)), set()
        events = self._diff(tuple(changed), unchanged, observed_at=observed_at, server_ms=server_ms, source=source)
        # the next snapshot may reuse these orders by their bytes, unless an oid was ambiguous
        self.item_digests = None if duplicated else joined
        self.item_oids = _NO_OIDS if duplicated else array("q", oids)
        return events

    def apply(
        self,
        snapshot: tuple[FrontendOrder, ...],
        *,
        observed_at: datetime,
        server_ms: int | None = None,
        source: str = schema.SOURCE_WS,
    ) -> list[dict[str, Any]]:
        """Diff a full, decoded snapshot against the tracked state, update it, return the events."""
        if server_ms is not None:
            self.last_server_ms = server_ms
        self.item_digests, self.item_oids = None, _NO_OIDS
        return self._diff(snapshot, set(), observed_at=observed_at, server_ms=server_ms, source=source)

    def _diff(
        self,
        snapshot: tuple[FrontendOrder, ...],
        unchanged: set[int],
        *,
        observed_at: datetime,
        server_ms: int | None,
        source: str,
    ) -> list[dict[str, Any]]:
        """Events for the orders of ``snapshot`` against the kept ones; ``unchanged`` oids are
        in the snapshot exactly as kept; every other kept order is closed."""
        server_time = ms_to_datetime(server_ms) if server_ms is not None else None
        current = flatten(snapshot)
        for oid in unchanged:  # listed top-level byte for byte as before: that copy wins
            current.pop(oid, None)
        events: list[dict[str, Any]] = []
        tracked = self.orders
        for oid, (order, parent) in current.items():
            fields = pack_fields(order)
            state = tracked.get(oid)
            if state is None:
                tracked[oid] = pack_state(fields, 0, parent)
                events.append(
                    build_event(self.user, order, schema.ACTION_NEW, 0, source=source,
                                observed_at=observed_at, server_time=server_time, parent_oid=parent)
                )
                continue
            if same_fields(state, fields):
                continue
            old, seq, kept_parent = unpack_state(state)
            changed = [name for name in TRACKED_FIELDS if getattr(old, name) != getattr(order, name)]
            if changed:
                seq += 1
                event = build_event(self.user, order, schema.ACTION_UPDATED, seq, source=source,
                                    observed_at=observed_at, server_time=server_time, parent_oid=kept_parent)
                event["changes"] = changed
                event["prevSz"] = old.sz
                event["prevLimitPx"] = old.limitPx
                event["partialFill"] = is_partial_fill(old, order)
                events.append(event)
            tracked[oid] = pack_state(fields, seq, kept_parent)
        for oid in [oid for oid in tracked if oid not in current and oid not in unchanged]:
            gone, seq, parent = unpack_state(tracked.pop(oid))
            events.append(
                build_event(self.user, gone, schema.ACTION_CLOSED, seq + 1, source=source,
                            observed_at=observed_at, server_time=server_time, parent_oid=parent)
            )
        return events


def is_partial_fill(old: FrontendOrder, new: FrontendOrder) -> bool:
    """A size decrease with the same original size and price: a partial fill, not an amend."""
    try:
        smaller = float(new.sz) < float(old.sz)
    except ValueError:
        return False
    return smaller and new.origSz == old.origSz and new.limitPx == old.limitPx
