"""Node status transitions and fills as order events (pure: no files, no database)."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

import msgspec

from collector_service import schema
from collector_service.events.node_lines import NodeFill, NodeStatus, decode_fill_event, decode_status
from collector_service.events.node_transitions import Placed, Transitions
from collector_service.events.tracker import OrderBook
from tests.collector.node_files import FILL_LINES, sample_status_blocks

USER = "0x424f58c01b5440ebc2382ac01b7a3597b12076ff"
NOW = datetime(2026, 4, 30, 20, 46, 50, tzinfo=UTC)


def _books() -> tuple[Transitions, dict[tuple[str, str], OrderBook]]:
    books: dict[tuple[str, str], OrderBook] = {}

    def book(user: str, dex: str) -> OrderBook:
        return books.setdefault((user, dex), OrderBook(user, dex))

    return Transitions(book), books


@functools.cache
def _template() -> dict[str, Any]:
    """A real open status of the sample (its order is a resting BTC limit order)."""
    for line in sample_status_blocks():
        for event in json.loads(line)["events"]:
            if event["status"] == "open":
                return event
    raise AssertionError("the sample has an open status")


def _status(status: str, oid: int, *, sz: str = "1.0", cloid: str | None = None, user: str = USER) -> NodeStatus:
    event = _template()
    order = {**event["order"], "oid": oid, "sz": sz, "origSz": "1.0", "cloid": cloid}
    return decode_status(json.dumps({**event, "user": user, "status": status, "order": order}).encode())


def _at(block: int) -> Placed:
    return Placed(block, datetime(2026, 4, 30, 20, 46, block % 60, tzinfo=UTC))


def _fill(oid: int, sz: str, tid: int) -> tuple[NodeFill, msgspec.Raw]:
    raw = decode_fill_event(FILL_LINES.read_bytes().splitlines()[0])[2]
    doc = {**json.loads(bytes(raw)), "oid": oid, "sz": sz, "tid": tid, "coin": "BTC"}
    _, fill, raw = decode_fill_event(json.dumps([USER, doc]).encode())
    return fill, raw


def test_open_is_new_once_and_a_terminal_status_closes_with_its_status_and_time() -> None:
    transitions, books = _books()
    [new] = transitions.statuses([(_status("open", 1), _at(10))], NOW)
    assert (new["action"], new["eventKey"], new["source"], new["blockNumber"], new["nodeStatus"]) == (
        "new",
        "new",
        "node",
        10,
        "open",
    )
    assert transitions.statuses([(_status("open", 1), _at(11))], NOW) == []  # the same order again
    [closed] = transitions.statuses([(_status("marginCanceled", 1), _at(12))], NOW)
    assert (closed["action"], closed["seq"], closed["finalStatus"], closed["statusTimestamp"]) == (
        "closed",
        1,
        "marginCanceled",
        _at(12).at,
    )
    assert books[(USER, "")].orders == {}


def test_triggered_is_an_update_of_the_same_oid() -> None:
    transitions, _ = _books()
    transitions.statuses([(_status("open", 5), _at(1))], NOW)
    [updated] = transitions.statuses([(_status("triggered", 5), _at(2))], NOW)
    assert (updated["action"], updated["eventKey"], updated["nodeStatus"], updated["partialFill"]) == (
        "updated",
        "updated:1",
        "triggered",
        False,
    )
    [closed] = transitions.statuses([(_status("filled", 5, sz="0.0"), _at(3))], NOW)
    assert (closed["seq"], closed["finalStatus"]) == (2, "filled")


def test_an_order_first_seen_terminal_gets_its_new_and_closed_together() -> None:
    transitions, _ = _books()
    new, closed = transitions.statuses([(_status("badAloPxRejected", 9), _at(1))], NOW)
    assert (new["eventKey"], closed["eventKey"], closed["seq"], closed["finalStatus"]) == (
        "new",
        "closed",
        1,
        "badAloPxRejected",
    )


def test_a_modify_links_the_replacement_whichever_comes_first() -> None:
    transitions, _ = _books()
    transitions.statuses(
        [(_status("open", 20, cloid="0xc1"), _at(1)), (_status("open", 30, cloid="0xc2"), _at(1))], NOW
    )
    # in one block: the new oid opens with the cloid, then the old one is cancelled
    new, closed = transitions.statuses(
        [(_status("open", 21, cloid="0xc1"), _at(2)), (_status("canceled", 20, cloid="0xc1"), _at(2))], NOW
    )
    assert (new["replacesOid"], new["replaceMatch"], closed["replacedByOid"], closed["finalStatus"]) == (
        20,
        "cloid",
        21,
        "canceled",
    )
    # across blocks: the open in one, the cancel in the next
    [new] = transitions.statuses([(_status("open", 31, cloid="0xc2"), _at(3))], NOW)
    [closed] = transitions.statuses([(_status("canceled", 30, cloid="0xc2"), _at(4))], NOW)
    assert (new["replacesOid"], closed["replacedByOid"]) == (30, 31)


def test_a_modify_of_an_order_never_seen_open_is_linked_from_its_own_lines() -> None:
    # the old orders were placed before the first line read: only their `canceled` lines, which
    # carry the whole order, come right after the replacement's `open` in the modify's block
    transitions, books = _books()
    events = transitions.statuses(
        [(_status("open", 21, cloid="0xc1"), _at(2)), (_status("canceled", 20, cloid="0xc1"), _at(2))], NOW
    )
    by_key = {(e["oid"], e["action"]): e for e in events}
    new, closed = by_key[(21, "new")], by_key[(20, "closed")]
    assert (new["replacesOid"], new["replaceMatch"], closed["replacedByOid"], closed["replaceMatch"]) == (
        20,
        "cloid",
        21,
        "cloid",
    )
    # without a cloid, the inferred rule: one cancelled and one placed alike in the block
    events = transitions.statuses([(_status("open", 31), _at(3)), (_status("canceled", 30), _at(3))], NOW)
    by_key = {(e["oid"], e["action"]): e for e in events}
    assert (by_key[(31, "new")]["replacesOid"], by_key[(30, "closed")]["replaceMatch"]) == (30, "inferred")
    # ... and only when unambiguous: two cancelled, one placed
    events = transitions.statuses(
        [(_status("open", 42), _at(4)), (_status("canceled", 40), _at(4)), (_status("canceled", 41), _at(4))], NOW
    )
    assert not any("replacesOid" in e or "replacedByOid" in e for e in events)
    assert set(books[(USER, "")].orders) == {21, 31, 42}


def test_a_filled_order_is_not_a_replaced_one_even_with_a_reused_cloid() -> None:
    transitions, _ = _books()
    transitions.statuses(
        [(_status("open", 40, cloid="0xc3"), _at(1)), (_status("open", 41, cloid="0xc3"), _at(1))], NOW
    )
    [closed] = transitions.statuses([(_status("filled", 40, cloid="0xc3"), _at(2))], NOW)
    assert "replacedByOid" not in closed


def test_a_partial_fill_is_an_update_and_the_last_fill_leaves_it_to_the_filled_status() -> None:
    transitions, books = _books()
    transitions.statuses([(_status("open", 7), _at(1))], NOW)
    fill, raw = _fill(7, "0.25", 111)
    doc, updated = transitions.fill(USER, fill, raw, _at(2), NOW)
    assert (doc["ethAddress"], doc["oid"], doc["tid"], doc["source"], doc["blockNumber"]) == (USER, 7, 111, "node", 2)
    assert updated is not None
    assert (updated["eventKey"], updated["sz"], updated["prevSz"], updated["partialFill"], updated["fillTid"]) == (
        "updated:1",
        "0.75",
        "1.0",
        True,
        111,
    )
    fill, raw = _fill(7, "0.75", 112)
    _, last = transitions.fill(USER, fill, raw, _at(3), NOW)
    assert last is None and 7 in books[(USER, "")].orders
    fill, raw = _fill(8, "1.0", 113)
    doc, none = transitions.fill(USER, fill, raw, _at(3), NOW)  # an order we never saw open: the fill only
    assert none is None and doc["oid"] == 8


def test_hip3_orders_live_in_their_dex_book() -> None:
    transitions, books = _books()
    status = _status("open", 50)
    status = msgspec.structs.replace(status, order=msgspec.structs.replace(status.order, coin="xyz:TSLA"))
    [new] = transitions.statuses([(status, _at(1))], NOW)
    assert new["dex"] == "xyz" and 50 in books[(USER, "xyz")].orders and schema.dex_of(new["coin"]) == "xyz"
