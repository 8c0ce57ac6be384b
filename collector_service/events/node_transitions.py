"""A tracked trader's node statuses and fills as ``trader_orders`` / ``trader_fills`` documents.

The node reports transitions, not snapshots, so they are applied to the same per-(trader, dex)
:class:`~collector_service.events.tracker.OrderBook` the snapshot diff keeps (a gap resync diffs a
snapshot against exactly this state): the first ``open`` of an oid is ``new``; ``triggered`` is
``updated``; every other status is terminal (``filled``, ``canceled``, ``*Canceled``,
``*Rejected``, … the set is open-ended, PROTOCOL.md §4.1) and ``closed`` with that status and
its time, so no outcome query is needed; an order first seen terminal (rejected, or opened
before we started reading) gets its ``new`` and ``closed`` together. A fill that leaves part of
its order open is ``updated`` with ``partialFill`` (a partial fill writes no status line,
NODE.md §2.4). A modify (new oid, same cloid, the old one ``canceled``) is linked by the
tracker's :func:`~collector_service.events.tracker.link_replacements`, block by block: a modify
writes the new oid's ``open`` and right after it the old oid's ``canceled`` in one block, and the
``canceled`` line carries the whole old order, so the pair is linked even when the old order was
placed before the first line read (never seen open). Pure logic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from collector_service import schema
from collector_service.events.fills import fill_doc
from collector_service.events.node_lines import NodeFill, NodeStatus
from collector_service.events.tracker import (
    TRACKED_FIELDS,
    OrderBook,
    build_event,
    link_replacements,
    pack_fields,
    pack_state,
    unpack_state,
)
from collector_service.events.wire import FrontendOrder

SOURCE_NODE = schema.SOURCE_NODE
OPEN = "open"
TRIGGERED = "triggered"


@dataclass
class Placed:
    """Where a transition sits in the node's output: its block (None in the hourly layout)."""

    block: int | None
    at: datetime  # the block's time, or the event's own time without blocks


Books = Callable[[str, str], OrderBook]
"""The tracked book of ``(trader, dex)``, created on first use."""


def _event(
    user: str,
    order: FrontendOrder,
    action: str,
    seq: int,
    dex: str,
    where: Placed,
    status: str,
    observed_at: datetime,
    parent: int | None,
) -> dict[str, Any]:
    event = build_event(
        user,
        order,
        action,
        seq,
        dex=dex,
        source=SOURCE_NODE,
        observed_at=observed_at,
        server_time=where.at,
        parent_oid=parent,
    )
    event["nodeStatus"] = status
    if where.block is not None:
        event["blockNumber"] = where.block
    return event


class Transitions:
    """Applies one block's worth of statuses to the books and returns the events they make."""

    def __init__(self, books: Books) -> None:
        self.books = books

    def statuses(self, items: Iterable[tuple[NodeStatus, Placed]], observed_at: datetime) -> list[dict[str, Any]]:
        """Events for a block's status transitions, in order, with the block's replacements linked."""
        events: list[dict[str, Any]] = []
        appeared: dict[OrderBook, list[tuple[FrontendOrder, dict[str, Any]]]] = {}
        vanished: dict[OrderBook, list[tuple[FrontendOrder, dict[str, Any]]]] = {}
        for status, where in items:
            order, user = status.order, status.user
            dex = schema.dex_of(order.coin)
            book = self.books(user, dex)
            state = book.orders.get(order.oid)
            kind = status.status
            if kind in (OPEN, TRIGGERED):
                if state is None:
                    book.orders[order.oid] = pack_state(pack_fields(order), 0, None)
                    event = _event(user, order, schema.ACTION_NEW, 0, dex, where, kind, observed_at, None)
                    events.append(event)
                    appeared.setdefault(book, []).append((order, event))
                elif kind == TRIGGERED:
                    old, seq, parent = unpack_state(state)
                    event = _event(user, order, schema.ACTION_UPDATED, seq + 1, dex, where, kind, observed_at, parent)
                    event["changes"] = [n for n in TRACKED_FIELDS if getattr(old, n) != getattr(order, n)] + ["status"]
                    event["prevSz"], event["prevLimitPx"], event["partialFill"] = old.sz, old.limitPx, False
                    book.orders[order.oid] = pack_state(pack_fields(order), seq + 1, parent)
                    events.append(event)
                continue  # an open of an order already open confirms it
            if state is None:
                placed = _event(user, order, schema.ACTION_NEW, 0, dex, where, kind, observed_at, None)
                events.append(placed)
                seq, parent = 0, None
            else:
                _, seq, parent = unpack_state(book.orders.pop(order.oid))
            closed = _event(user, order, schema.ACTION_CLOSED, seq + 1, dex, where, kind, observed_at, parent)
            closed["finalStatus"], closed["statusTimestamp"] = kind, where.at
            events.append(closed)
            if kind == schema.FINAL_STATUS_CANCELED:  # seen open or not: the line carries the whole order
                vanished.setdefault(book, []).append((order, closed))
        for book in {*appeared, *vanished}:
            link_replacements(appeared.get(book, []), vanished.get(book, []), book.open_with_cloid)
        return events

    def fill(
        self, user: str, fill: NodeFill, raw: msgspec.Raw, where: Placed, observed_at: datetime, to_book: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The ``trader_fills`` document of a fill, and the ``updated`` event of the order it
        left partly open (None when it filled the rest, the order is not tracked open, or not
        ``to_book``: the tracked size already includes it)."""
        doc = fill_doc(user, raw, source=SOURCE_NODE, observed_at=observed_at)
        if where.block is not None:
            doc["blockNumber"] = where.block
        if not to_book:
            return doc, None
        book = self.books(user, schema.dex_of(fill.coin))
        state = book.orders.get(fill.oid)
        if state is None:
            return doc, None
        old, seq, parent = unpack_state(state)
        try:
            left = Decimal(old.sz) - Decimal(fill.sz)
        except InvalidOperation:
            return doc, None
        if left <= 0:
            return doc, None  # the order's "filled" status closes it
        order = msgspec.structs.replace(old, sz=str(left))
        book.orders[fill.oid] = pack_state(pack_fields(order), seq + 1, parent)
        event = _event(
            user, order, schema.ACTION_UPDATED, seq + 1, schema.dex_of(fill.coin), where, "fill", observed_at, parent
        )
        event.update(changes=["sz"], prevSz=old.sz, prevLimitPx=old.limitPx, partialFill=True, fillTid=fill.tid)
        return doc, event
