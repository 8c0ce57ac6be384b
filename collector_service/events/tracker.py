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

A modify is a cancel-and-replace on Hyperliquid (PROTOCOL.md §4.3): the amended order comes back
under a new oid with the same cloid and the old oid ends ``canceled``. The diff links the two
(:func:`link_replacements`): the replacement's ``new`` event gets ``replacesOid``, the old order's
``closed`` event ``replacedByOid``. A same-oid change stays an ``updated`` event, should the
exchange ever amend in place.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec.structs import astuple
from xxhash import xxh3_128_digest

from collector_service import schema
from collector_service.events.wire import FrontendOrder, OrderItems, decode_orders

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
    dex: str,
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
        "timestamp": ms_to_datetime(order.timestamp), "ethAddress": user, "dex": dex,
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
    """The open orders of one trader on one dex and the diff of each new snapshot against them."""

    __slots__ = ("dex", "item_children", "item_digests", "item_oids", "last_server_ms", "orders", "user")

    def __init__(self, user: str, dex: str = schema.MAIN_DEX) -> None:
        self.user = user
        self.dex = dex
        self.orders: dict[int, bytes] = {}
        self.item_digests: bytes | None = None  # the last raw snapshot's order digests, 16 bytes each
        self.item_oids = _NO_OIDS  # ... and their oids, in the same positions
        self.item_children: dict[int, tuple[int, ...]] | None = None  # ... and the children of those with any
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

    def open_with_cloid(self, cloid: str, other_than: int) -> int | None:
        """The oid of a tracked open order with this cloid, other than ``other_than``.

        Scans the packed orders for the cloid's bytes (msgpack keeps strings verbatim) and
        decodes only a hit; it runs only for orders that appear or vanish carrying a cloid.
        """
        needle = cloid.encode()
        for oid, state in self.orders.items():
            if oid != other_than and needle in state and unpack_state(state)[0].cloid == cloid:
                return oid
        return None

    def apply_raw(
        self,
        items: OrderItems,
        *,
        observed_at: datetime,
        server_ms: int | None = None,
        source: str = schema.SOURCE_WS,
    ) -> list[dict[str, Any]]:
        """Diff a snapshot whose orders are still raw JSON, decoding only those whose bytes changed.

        Raises :class:`~collector_service.events.wire.FrameError` when an order that must be read does not
        decode.
        """
        if server_ms is not None:
            self.last_server_ms = server_ms
        digests = list(map(xxh3_128_digest, items))
        joined = b"".join(digests)
        previous, previous_oids = self.item_digests, self.item_oids
        if joined == previous:
            return []
        previous = previous or b""
        oids: list[int] = []
        unchanged: set[int] = set()
        to_decode: list[int] = []  # positions of the items to decode
        parents: list[int] = []  # ... and of TP/SL parents listed as before
        for i, item_digest in enumerate(digests):
            at = i * _DIGEST
            if not previous.startswith(item_digest, at):
                at = previous.find(item_digest)
                while at > 0 and at % _DIGEST:  # a match must start on a digest boundary
                    at = previous.find(item_digest, at + 1)
            # a kept oid is negative for an order with children (a TP/SL parent)
            oid = previous_oids[at // _DIGEST] if at >= 0 else 0
            if oid > 0:
                unchanged.add(oid)
            elif oid < 0:
                parents.append(i)
            else:
                to_decode.append(i)
            oids.append(oid)
        children: dict[int, tuple[int, ...]] = {}
        if parents:
            kept_children = self.item_children or {}
            for i in parents:
                # a parent listed as before stays so if each of its children is also listed
                # top-level as before (as the exchange lists them); else only its own copy says
                # which children it still has, and it is decoded
                kids = kept_children.get(-oids[i])
                if kids is not None and unchanged.issuperset(kids):
                    unchanged.add(-oids[i])
                    children[-oids[i]] = kids
                else:
                    to_decode.append(i)
            to_decode.sort()
        changed = decode_orders([items[i] for i in to_decode])  # one call: most of the cost is per call
        for i, order in zip(to_decode, changed, strict=True):
            oids[i] = -order.oid if order.children else order.oid
            if order.children:
                children[order.oid] = tuple(child.oid for child in order.children)
        # each position names one oid: fewer distinct ones than positions means an oid listed twice
        decoded = {order.oid for order in changed}
        duplicated = len(unchanged) + len(decoded) < len(oids) or not unchanged.isdisjoint(decoded)
        if duplicated:  # an oid listed twice: the full diff decides which copy counts
            changed, unchanged = decode_orders(items), set()
        events = self._diff(changed, unchanged, observed_at=observed_at, server_ms=server_ms, source=source)
        # the next snapshot may reuse these orders by their bytes, unless an oid was ambiguous
        self.item_digests = None if duplicated else joined
        self.item_oids = _NO_OIDS if duplicated else array("q", oids)
        self.item_children = None if duplicated or not children else children
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
        for oid in unchanged.intersection(current):  # listed top-level byte for byte as before: that copy wins
            del current[oid]
        events: list[dict[str, Any]] = []
        appeared: list[tuple[FrontendOrder, dict[str, Any]]] = []
        tracked = self.orders
        user, dex = self.user, self.dex
        for oid, (order, parent) in current.items():
            fields = pack_fields(order)
            state = tracked.get(oid)
            if state is None:
                tracked[oid] = pack_state(fields, 0, parent)
                event = build_event(user, order, schema.ACTION_NEW, 0, dex=dex, source=source,
                                    observed_at=observed_at, server_time=server_time, parent_oid=parent)
                events.append(event)
                appeared.append((order, event))
                continue
            if same_fields(state, fields):
                continue
            old, seq, kept_parent = unpack_state(state)
            changed = [name for name in TRACKED_FIELDS if getattr(old, name) != getattr(order, name)]
            if changed:
                seq += 1
                event = build_event(user, order, schema.ACTION_UPDATED, seq, dex=dex, source=source,
                                    observed_at=observed_at, server_time=server_time, parent_oid=kept_parent)
                event["changes"] = changed
                event["prevSz"] = old.sz
                event["prevLimitPx"] = old.limitPx
                event["partialFill"] = is_partial_fill(old, order)
                events.append(event)
            tracked[oid] = pack_state(fields, seq, kept_parent)
        vanished: list[tuple[FrontendOrder, dict[str, Any]]] = []
        closing = tracked.keys() - unchanged - current.keys()
        for oid in [oid for oid in tracked if oid in closing] if len(closing) > 1 else closing:  # in the order kept
            gone, seq, parent = unpack_state(tracked.pop(oid))
            event = build_event(user, gone, schema.ACTION_CLOSED, seq + 1, dex=dex, source=source,
                                observed_at=observed_at, server_time=server_time, parent_oid=parent)
            events.append(event)
            vanished.append((gone, event))
        if appeared or vanished:
            link_replacements(appeared, vanished, self.open_with_cloid)
        return events


def link(closed: dict[str, Any] | None, new: dict[str, Any] | None, old_oid: int, new_oid: int, match: str) -> None:
    """Write a replacement link on the old order's ``closed`` and the replacement's ``new`` event."""
    if closed is not None:
        closed["replacedByOid"] = new_oid
        closed["replaceMatch"] = match
    if new is not None:
        new["replacesOid"] = old_oid
        new["replaceMatch"] = match


def replacement_key(order: FrontendOrder) -> tuple[str, str, str | None, bool, str | None]:
    """What a replacement without a cloid must share with the order it replaced (an IOC that
    filled at once is not a resting Gtc order's replacement)."""
    return (order.coin, order.side, order.orderType, order.reduceOnly, order.tif)


def link_replacements(
    appeared: list[tuple[FrontendOrder, dict[str, Any]]],
    vanished: list[tuple[FrontendOrder, dict[str, Any]]],
    open_with_cloid: Callable[[str, int], int | None],
) -> None:
    """Link the events of one snapshot's replacements (a modify is cancel-and-replace).

    With a cloid: an order that appears with the cloid of an order that vanished, or of one still
    open (the replacement's ``open`` can come before the old order's ``canceled``), replaces it;
    an order that vanishes while a newer open order carries its cloid was replaced by it.
    Without a cloid, a vanished and an appeared order of the same trader, coin, side, order type,
    reduce-only flag and time in force are linked as ``inferred`` only when they are the only such pair in the
    snapshot: an ambiguous match is no match.
    """
    gone_by_cloid: dict[str, list[tuple[FrontendOrder, dict[str, Any]]]] = {}
    if any(order.cloid for order, _ in vanished):
        for order, event in sorted(vanished, key=lambda item: item[0].oid):
            if order.cloid:
                gone_by_cloid.setdefault(order.cloid, []).append((order, event))
    plain_new: dict[tuple[str, str, str | None, bool, str | None], list[tuple[FrontendOrder, dict[str, Any]]]] = {}
    for order, event in appeared:
        if not order.cloid:
            plain_new.setdefault(replacement_key(order), []).append((order, event))
            continue
        older = [g for g in gone_by_cloid.get(order.cloid, []) if g[0].oid < order.oid]
        if older:
            link(older[-1][1], event, older[-1][0].oid, order.oid, schema.MATCH_CLOID)
            continue
        still_open = open_with_cloid(order.cloid, order.oid)
        if still_open is not None and still_open < order.oid:
            link(None, event, still_open, order.oid, schema.MATCH_CLOID)
    for cloid, gone in gone_by_cloid.items():
        # several orders of one cloid gone at once: each was replaced by the next (a modify,
        # then the replacement closed too), the newest by an open order with the cloid, if any
        for i, (order, event) in enumerate(gone):
            if "replacedByOid" in event:
                continue
            newer = gone[i + 1][0].oid if i + 1 < len(gone) else open_with_cloid(cloid, order.oid)
            if newer is not None and newer > order.oid:
                link(event, None, order.oid, newer, schema.MATCH_CLOID)
    if not plain_new:
        return
    plain_gone: dict[tuple[str, str, str | None, bool, str | None], list[tuple[FrontendOrder, dict[str, Any]]]] = {}
    for order, event in vanished:
        if not order.cloid:
            plain_gone.setdefault(replacement_key(order), []).append((order, event))
    for key, gone in plain_gone.items():
        candidates = plain_new.get(key, [])
        if len(gone) == 1 and len(candidates) == 1:
            (before, closed), (after, placed) = gone[0], candidates[0]
            if after.oid > before.oid and after.timestamp >= before.timestamp:
                link(closed, placed, before.oid, after.oid, schema.MATCH_INFERRED)


def is_partial_fill(old: FrontendOrder, new: FrontendOrder) -> bool:
    """A size decrease with the same original size and price: a partial fill, not an amend."""
    try:
        smaller = float(new.sz) < float(old.sz)
    except ValueError:
        return False
    return smaller and new.origSz == old.origSz and new.limitPx == old.limitPx
