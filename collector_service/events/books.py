"""Order-book context: the book a trader's order met when orderwatch saw it.

For every coin in which a followed trader has an open order, the collector subscribes to the
public ``l2Book`` channel (no user cap; one subscription per coin; ``{"coin", "time", "levels":
[bids, asks]}``, 20 levels a side, best first, each ``{px, sz, n}``) and stamps each ``new`` and
``updated`` event with the fields of :data:`collector_service.schema.BOOK_FIELDS`. A coin's
subscription starts with its first followed order and ends :data:`UNWATCH_AFTER_S` after its last
one closed (so re-quoting does not churn subscriptions).

A book is used only while it is fresh: received at most :data:`MAX_BOOK_AGE_S` ago on a
connection that has stayed up since (a dropped connection forgets its books). Events of a coin
with no fresh book get nulls, never stale numbers. The first order on a coin nobody watched yet
is stamped null: its book arrives after it. Pure logic, no I/O: the feed delivers frames and
carries out the watch list.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import msgspec

from collector_service import schema
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import EpochMs, FrameError, excerpt

MAX_BOOK_AGE_S = 60.0
"""An l2Book is pushed whenever the book changes; one older than this (a quiet book, or a feed
that stalled without dropping) is not trusted."""

UNWATCH_AFTER_S = 60.0
"""A coin's book stays subscribed this long after its last followed order closed."""

DEPTH_BAND = 0.01
"""bookDepth1pctUsd: the notional within 1 % of mid."""


Trigger = Literal["above", "below", "unknown"]
"""Where a trigger order's trigger price is reached: the price rising to it, falling to it, or not
said by the order (an order type this module does not know)."""


def trigger_direction(event: Mapping[str, Any]) -> Trigger:
    """A stop triggers against the order: a buy stop when the price rises to it, a sell stop when it
    falls to it; a take-profit the other way round (the exchange's ``triggerCondition`` text says the
    same: "Price above ..." / "Price below ...")."""
    order_type, buy = event.get("orderType") or "", event.get("side") == "B"
    if order_type.startswith("Stop"):
        return "above" if buy else "below"
    if order_type.startswith("Take Profit"):
        return "below" if buy else "above"
    return "unknown"


class Level(msgspec.Struct, frozen=True, gc=False):
    px: str
    sz: str
    n: int = 0


class L2BookData(msgspec.Struct, frozen=True, gc=False):
    coin: str
    time: EpochMs
    levels: tuple[tuple[Level, ...], tuple[Level, ...]]


_book_decoder = msgspec.json.Decoder(L2BookData)


class _Side:
    """One side of a book as stamping reads it: price keys best first (bids negated), the notional of
    the levels up to each position (``ahead[i]``: the first ``i`` levels), and each price's size."""

    __slots__ = ("ahead", "keys", "sizes")

    def __init__(self, levels: list[tuple[float, float]], buy: bool) -> None:
        ordered = sorted(levels, key=lambda level: -level[0] if buy else level[0])  # as sent: best first
        self.keys = [-p if buy else p for p, _ in ordered]
        self.ahead: list[float] = [0]  # an int 0 when nothing is ahead, as sum() of nothing
        self.sizes: dict[float, float] = {}
        for p, s in ordered:
            self.ahead.append(self.ahead[-1] + p * s)
            self.sizes.setdefault(p, s)

    def notional_through(self, px: float, buy: bool) -> float:
        """The notional of the levels at ``px`` or better."""
        return self.ahead[bisect_right(self.keys, -px if buy else px)]


class Book:
    """One coin's book as floats, best first on each side."""

    __slots__ = ("_sides", "asks", "at", "bids", "coin", "mid", "received")

    def __init__(self, data: L2BookData, received: float) -> None:
        self.coin = data.coin
        self.at = ms_to_datetime(data.time)
        self.bids = [(float(level.px), float(level.sz)) for level in data.levels[0]]
        self.asks = [(float(level.px), float(level.sz)) for level in data.levels[1]]
        self.received = received
        self.mid = (self.bids[0][0] + self.asks[0][0]) / 2 if self.bids and self.asks else None
        self._sides: dict[bool, _Side] = {}  # built at the first stamp: most books are never read

    def context(self, side: str, px: float, sz: float, *, trigger: Trigger | None) -> dict[str, Any]:
        """The book fields for an order (``side`` "B"/"A") at ``px`` (its trigger price when ``trigger``
        is given) with ``sz`` remaining."""
        mid = self.mid
        if mid is None or mid <= 0:
            return dict.fromkeys(schema.BOOK_FIELDS)
        buy = side == "B"
        levels = self._sides.get(buy)
        if levels is None:
            levels = self._sides[buy] = _Side(self.bids if buy else self.asks, buy)
        # Positive: the market has that far to go (a resting order away from it, a trigger not reached).
        below = buy if trigger is None else trigger == "below"
        distance = None if trigger == "unknown" else ((mid - px) if below else (px - mid)) / mid * 10_000
        within = levels.notional_through(mid * (1 - DEPTH_BAND) if buy else mid * (1 + DEPTH_BAND), buy)
        ahead = share = None
        if trigger is None:
            ahead = levels.notional_through(px, buy)
            level = levels.sizes.get(px)
            share = sz / level if level else None
        return {"bookMidPx": mid, "distanceBps": distance, "depthAheadUsd": ahead, "levelShare": share,
                "bookDepth1pctUsd": within, "bookAt": self.at}


class Books:
    """The latest fresh book per coin, the coins to watch, and event stamping."""

    def __init__(self, watch: Callable[[str], None] = lambda coin: None,
                 unwatch: Callable[[str], None] = lambda coin: None) -> None:
        self.watch = watch
        self.unwatch = unwatch
        self.books: dict[str, Book] = {}
        self.open_orders: dict[str, int] = {}  # coin -> followed open orders
        self.idle_since: dict[str, float] = {}  # coin -> when its last followed order closed
        self.watched: set[str] = set()

    # ----- frames ----------------------------------------------------------------------------
    def on_frame(self, raw: msgspec.Raw | bytes, now: float | None = None) -> None:
        """Keep a coin's newest book (FrameError if the frame is not a book)."""
        try:
            data = _book_decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            raise FrameError("invalid", f"l2Book: {exc} in {excerpt(bytes(raw))!r}") from None
        book = Book(data, time.monotonic() if now is None else now)
        known = self.books.get(book.coin)
        if known is None or book.at >= known.at:
            self.books[book.coin] = book

    def forget(self) -> None:
        """The connection carrying the books dropped: none of them is known to be current."""
        self.books.clear()

    def fresh(self, coin: str, now: float | None = None) -> Book | None:
        book = self.books.get(coin)
        now = time.monotonic() if now is None else now
        return book if book is not None and now - book.received <= MAX_BOOK_AGE_S else None

    # ----- stamping --------------------------------------------------------------------------
    def stamp(self, events: Iterable[dict[str, Any]], now: float | None = None) -> None:
        """Add the book fields to each new/updated event (nulls without a fresh book), and keep
        the watch list in step with the followed open orders."""
        now = time.monotonic() if now is None else now  # once for the whole frame
        for event in events:
            action, coin = event["action"], event["coin"]
            if action == schema.ACTION_CLOSED:
                self._count(coin, -1, now)
                continue
            if action == schema.ACTION_NEW:
                self._count(coin, +1, now)
            book = self.fresh(coin, now)
            if book is None:
                event.update(dict.fromkeys(schema.BOOK_FIELDS))
                continue
            trigger = trigger_direction(event) if event.get("isTrigger") else None
            try:
                px = float(event["triggerPx"] if trigger else event["limitPx"])
                sz = float(event["sz"])
            except (TypeError, ValueError):
                event.update(dict.fromkeys(schema.BOOK_FIELDS))
                continue
            event.update(book.context(event["side"], px, sz, trigger=trigger))

    # ----- the watch list --------------------------------------------------------------------
    def load(self, open_orders: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Count the stored open orders (restart): their coins are watched from the start."""
        for docs in open_orders.values():
            for doc in docs:
                self._count(doc["coin"], +1, None)

    def release(self, coins: Iterable[str]) -> None:
        """Open orders no longer followed (their trader left the watch list)."""
        for coin in coins:
            self._count(coin, -1, None)

    def _count(self, coin: str, delta: int, now: float | None) -> None:
        n = self.open_orders.get(coin, 0) + delta
        if n > 0:
            self.open_orders[coin] = n
            self.idle_since.pop(coin, None)
            if coin not in self.watched:
                self.watched.add(coin)
                self.watch(coin)
        else:
            self.open_orders.pop(coin, None)
            if coin in self.watched:
                self.idle_since.setdefault(coin, time.monotonic() if now is None else now)

    def sweep(self, now: float | None = None) -> list[str]:
        """Stop watching coins without a followed order for :data:`UNWATCH_AFTER_S`."""
        now = time.monotonic() if now is None else now
        done = [coin for coin, since in self.idle_since.items() if now - since >= UNWATCH_AFTER_S]
        for coin in done:
            del self.idle_since[coin]
            self.watched.discard(coin)
            self.books.pop(coin, None)
            self.unwatch(coin)
        return done

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        ages = [now - b.received for b in self.books.values()]
        return {"coins_watched": len(self.watched), "books_fresh": sum(a <= MAX_BOOK_AGE_S for a in ages),
                "oldest_book_s": round(max(ages), 1) if ages else None}

