"""Pure tests: a modify is a cancel-and-replace (new oid, same cloid) and the diff links the two
events; dexes are kept apart. Orders are the real captured frontend order with fields changed."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from collector_service import schema
from collector_service.events.tracker import OrderBook
from collector_service.events.wire import decode_frame, historical_orders_decoder
from collector_service.pipeline import replacements_in_history
from tests.collector.frames import USER, encode, frontend_orders, open_orders_frame

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CLOID = "0x" + "ab" * 16


def order(oid: int, *, cloid: str | None = None, px: str = "10.0", sz: str = "12.5", coin: str = "INJ",
          side: str = "B", ts: int = 1_700_126_022_555) -> dict[str, Any]:
    """The real sample's parent limit order (children dropped) with the given fields."""
    base = copy.deepcopy(frontend_orders()[0])
    base.update(children=[], oid=oid, cloid=cloid, limitPx=px, sz=sz, origSz=sz, coin=coin, side=side,
                timestamp=ts)
    return base


def diff(book: OrderBook, orders: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    msg = decode_frame(encode(open_orders_frame(orders)))
    events = book.apply_raw(msg.data.orders, observed_at=T0)  # type: ignore[union-attr]
    return {(e["oid"], e["action"]): e for e in events}


def links(events: dict[tuple[int, str], dict[str, Any]]) -> dict[tuple[int, str], tuple[Any, Any, Any]]:
    return {k: (e.get("replacesOid"), e.get("replacedByOid"), e.get("replaceMatch")) for k, e in events.items()}


def test_modify_with_cloid_in_one_snapshot_links_both_events() -> None:
    book = OrderBook(USER)
    diff(book, [order(1, cloid=CLOID), order(5)])
    events = diff(book, [order(2, cloid=CLOID, px="10.5"), order(5)])
    assert links(events) == {(2, "new"): (1, None, "cloid"), (1, "closed"): (None, 2, "cloid")}
    assert events[(1, "closed")]["finalStatus"] == "unknown"  # the outcome comes from the exchange


def test_replacement_listed_before_the_old_order_goes() -> None:
    book = OrderBook(USER)
    diff(book, [order(1, cloid=CLOID)])
    both = diff(book, [order(2, cloid=CLOID, px="10.5"), order(1, cloid=CLOID)])
    assert links(both) == {(2, "new"): (1, None, "cloid")}
    later = diff(book, [order(2, cloid=CLOID, px="10.5")])
    assert links(later) == {(1, "closed"): (None, 2, "cloid")}


def test_restart_between_the_two_halves_keeps_the_link() -> None:
    stored = [{**o, "timestamp": T0, "seq": 0} for o in (order(1, cloid=CLOID), order(2, cloid=CLOID, px="10.5"))]
    restarted = OrderBook(USER)
    restarted.load(stored)
    assert links(diff(restarted, [order(2, cloid=CLOID, px="10.5")])) == {(1, "closed"): (None, 2, "cloid")}


def test_a_replacement_gone_with_the_order_it_replaced() -> None:
    """A modify, then the replacement filled, both between two snapshots of the old order's
    world: each closed event says what replaced it."""
    book = OrderBook(USER)
    diff(book, [order(1, cloid=CLOID)])
    assert links(diff(book, [order(1, cloid=CLOID), order(2, cloid=CLOID, px="10.5")])) == {
        (2, "new"): (1, None, "cloid")}
    assert links(diff(book, [])) == {(1, "closed"): (None, 2, "cloid"), (2, "closed"): (None, None, None)}


def test_modify_without_cloid_is_inferred_only_when_unambiguous() -> None:
    book = OrderBook(USER)
    diff(book, [order(1), order(7, coin="BTC")])
    events = diff(book, [order(2, px="9.9"), order(7, coin="BTC")])
    assert links(events) == {(2, "new"): (1, None, "inferred"), (1, "closed"): (None, 2, "inferred")}

    ambiguous = OrderBook(USER)
    diff(ambiguous, [order(1), order(3, px="9.0")])
    assert set(links(diff(ambiguous, [order(4, px="9.5"), order(5, px="8.5")])).values()) == {(None, None, None)}

    other_side = OrderBook(USER)
    diff(other_side, [order(1)])
    assert set(links(diff(other_side, [order(2, side="A")])).values()) == {(None, None, None)}


def test_cancel_and_unrelated_new_order_with_another_cloid_are_not_linked() -> None:
    book = OrderBook(USER)
    diff(book, [order(1, cloid=CLOID)])
    events = diff(book, [order(2, cloid="0x" + "cd" * 16)])
    assert set(links(events).values()) == {(None, None, None)}


def test_same_oid_amend_is_still_an_update() -> None:
    """Should the exchange ever amend in place, the change is an updated event, not a replacement."""
    book = OrderBook(USER)
    diff(book, [order(1, cloid=CLOID)])
    events = diff(book, [order(1, cloid=CLOID, px="10.5")])
    (ev,) = events.values()
    assert (ev["action"], ev["changes"], ev["partialFill"], ev.get("replacesOid")) == ("updated", ["limitPx"],
                                                                                       False, None)


def test_events_carry_their_books_dex() -> None:
    book = OrderBook(USER, "xyz")
    (ev,) = diff(book, [order(9, coin="xyz:TSLA")]).values()
    assert ev["dex"] == "xyz"
    (spot,) = diff(OrderBook(USER), [order(10, coin="@107")]).values()
    assert spot["dex"] == ""
    assert [schema.dex_of(c) for c in ("BTC", "PURR/USDC", "@107", "xyz:TSLA")] == ["", "", "", "xyz"]


def history_row(oid: int, status: str, placed: int, ended: int, *, cloid: str | None = None,
                coin: str = "INJ") -> dict[str, Any]:
    return {"order": order(oid, cloid=cloid, coin=coin, ts=placed), "status": status, "statusTimestamp": ended}


def test_replacements_in_history() -> None:
    rows = historical_orders_decoder.decode(encode([
        history_row(1, "canceled", 1000, 5000, cloid=CLOID),
        history_row(2, "canceled", 5000, 9000, cloid=CLOID),  # replaced again
        history_row(3, "open", 9000, 9000, cloid=CLOID),
        history_row(10, "canceled", 1000, 5000),  # no cloid: the only match placed at the cancel
        history_row(11, "filled", 5000, 6000),
        history_row(20, "canceled", 1000, 2000, coin="BTC"),  # a cancel, then a new order much later
        history_row(21, "open", 60000, 60000, coin="BTC"),
        history_row(30, "filled", 1000, 5000, coin="SOL"),  # filled: not replaced
        history_row(31, "open", 5000, 5000, coin="SOL"),
    ]))
    latest = {row.order.oid: row for row in rows}
    assert sorted(replacements_in_history(latest)) == [(1, 2, "cloid"), (2, 3, "cloid"), (10, 11, "inferred")]
    two_cancels_one_new = historical_orders_decoder.decode(encode([
        history_row(40, "canceled", 1000, 5000, coin="ETH"), history_row(41, "canceled", 1000, 5000, coin="ETH"),
        history_row(42, "open", 5000, 5000, coin="ETH")]))
    assert replacements_in_history({r.order.oid: r for r in two_cancels_one_new}) == []  # which one is unknown
