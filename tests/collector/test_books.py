"""Pure tests: order-book context of an order, hand-worked on a small book, and the watch list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from collector_service import schema
from collector_service.events.books import MAX_BOOK_AGE_S, UNWATCH_AFTER_S, Books
from collector_service.events.wire import FrameError, L2BookMsg, decode_frame

T_MS = 1_795_600_000_000
# mid = (100 + 101) / 2 = 100.5
BIDS = [("100", "2"), ("99.5", "4"), ("99", "10"), ("98", "50")]
ASKS = [("101", "1"), ("101.5", "3"), ("102", "5"), ("103", "40")]


def frame(coin: str = "BTC", at: int = T_MS, bids: list[tuple[str, str]] = BIDS,
          asks: list[tuple[str, str]] = ASKS) -> bytes:
    levels = [[{"px": px, "sz": sz, "n": 1} for px, sz in side] for side in (bids, asks)]
    return json.dumps({"channel": "l2Book", "data": {"coin": coin, "time": at, "levels": levels}}).encode()


def event(action: str = "new", side: str = "B", px: str = "99.5", sz: str = "1", coin: str = "BTC",
          trigger: bool = False) -> dict[str, Any]:
    return {"action": action, "coin": coin, "side": side, "limitPx": px, "sz": sz, "isTrigger": trigger,
            "triggerPx": px if trigger else "0.0"}


def stamped(books: Books, ev: dict[str, Any], now: float = 0.0) -> dict[str, Any]:
    books.stamp([ev], now=now)
    return {k: ev[k] for k in schema.BOOK_FIELDS}


def books_with_frame(now: float = 0.0) -> Books:
    books = Books()
    msg = decode_frame(frame())
    assert isinstance(msg, L2BookMsg)
    books.on_frame(msg.data, now=now)
    return books


def test_a_resting_bid_hand_worked() -> None:
    got = stamped(books_with_frame(), event(side="B", px="99.5", sz="1"))
    assert got["bookMidPx"] == pytest.approx(100.5)
    assert got["distanceBps"] == pytest.approx((100.5 - 99.5) / 100.5 * 1e4)  # away from the market: positive
    assert got["depthAheadUsd"] == pytest.approx(100 * 2 + 99.5 * 4)  # bids at or above 99.5
    assert got["levelShare"] == pytest.approx(1 / 4)
    assert got["bookDepth1pctUsd"] == pytest.approx(100 * 2 + 99.5 * 4)  # bids >= 99.495
    assert got["bookAt"] == datetime.fromtimestamp(T_MS / 1000, UTC)


def test_a_crossing_ask_and_a_price_outside_the_levels() -> None:
    got = stamped(books_with_frame(), event(side="A", px="100", sz="2"))
    assert got["distanceBps"] == pytest.approx((100 - 100.5) / 100.5 * 1e4) and got["distanceBps"] < 0
    assert got["depthAheadUsd"] == 0.0 and got["levelShare"] is None  # no ask at or below 100
    assert got["bookDepth1pctUsd"] == pytest.approx(101 * 1 + 101.5 * 3)  # asks <= 101.505
    far = stamped(books_with_frame(), event(side="B", px="90"))
    assert far["levelShare"] is None and far["depthAheadUsd"] == pytest.approx(100 * 2 + 99.5 * 4 + 99 * 10 + 98 * 50)


@pytest.mark.parametrize(
    ("side", "order_type", "trigger_px", "to_go"),
    [
        ("A", "Stop Market", "95", 100.5 - 95),  # a long's stop, below the market: it must fall 5.5
        ("B", "Stop Limit", "110", 110 - 100.5),  # a short's stop, above: it must rise 9.5
        ("A", "Take Profit Market", "110", 110 - 100.5),  # a long's take-profit, above: it must rise
        ("B", "Take Profit Limit", "95", 100.5 - 95),  # a short's take-profit, below: it must fall
        ("A", "Stop Market", "101", 100.5 - 101),  # a sell stop the market is already under: past it
    ],
)
def test_a_trigger_orders_distance_is_what_the_market_must_move_to_trigger_it(
    side: str, order_type: str, trigger_px: str, to_go: float
) -> None:
    got = stamped(books_with_frame(), event(side=side, px=trigger_px, trigger=True) | {"orderType": order_type})
    assert got["distanceBps"] == pytest.approx(to_go / 100.5 * 1e4)
    assert got["depthAheadUsd"] is None and got["levelShare"] is None  # no queue position before it triggers
    assert got["bookDepth1pctUsd"] is not None


def test_a_trigger_order_of_an_unknown_type_has_no_distance() -> None:
    got = stamped(books_with_frame(), event(side="A", px="95", trigger=True) | {"orderType": "Vault Close"})
    assert got["distanceBps"] is None and got["bookMidPx"] == pytest.approx(100.5)


def test_nulls_without_a_fresh_book_never_stale_numbers() -> None:
    assert set(stamped(Books(), event()).values()) == {None}  # no book yet
    assert set(stamped(books_with_frame(now=0.0), event(), now=MAX_BOOK_AGE_S + 1).values()) == {None}  # too old
    forgotten = books_with_frame()
    forgotten.forget()  # its connection dropped
    assert set(stamped(forgotten, event()).values()) == {None}
    assert set(stamped(books_with_frame(), event(coin="ETH")).values()) == {None}  # another coin


def test_an_older_book_does_not_replace_a_newer_one() -> None:
    books = books_with_frame()
    books.on_frame(decode_frame(frame(at=T_MS - 1000, bids=[("50", "1")], asks=[("51", "1")])).data)  # type: ignore[union-attr]
    assert stamped(books, event())["bookMidPx"] == pytest.approx(100.5)


def test_bad_book_frames_are_named() -> None:
    with pytest.raises(FrameError, match="l2Book"):
        Books().on_frame(b'{"coin":"BTC","time":1,"levels":[[{"px":"1"}],[]]}')


def test_watch_list_follows_followed_orders_with_a_grace_period() -> None:
    watched: list[str] = []
    unwatched: list[str] = []
    books = Books(watch=watched.append, unwatch=unwatched.append)
    books.load({"u": [{"coin": "SOL"}]})
    books.stamp([event(coin="BTC"), event(coin="BTC")], now=0.0)
    assert watched == ["SOL", "BTC"]
    books.stamp([event(action="closed", coin="BTC")], now=1.0)
    assert books.sweep(now=1.0 + UNWATCH_AFTER_S) == []  # one BTC order still rests
    books.stamp([event(action="closed", coin="BTC")], now=2.0)
    books.stamp([event(coin="BTC")], now=3.0)  # re-quoted: no churn
    books.stamp([event(action="closed", coin="BTC")], now=4.0)
    assert books.sweep(now=4.0 + UNWATCH_AFTER_S - 1) == []
    assert books.sweep(now=4.0 + UNWATCH_AFTER_S) == ["BTC"] and unwatched == ["BTC"] and watched == ["SOL", "BTC"]
