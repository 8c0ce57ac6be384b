"""Per-coin L2 order books: the simulated traders' resting orders plus seeded background liquidity.

The book of a coin (`OrderBooks.levels`) is built from two sources:

- **Trader orders**: every open, non-trigger order of the simulated traders on the coin,
  aggregated by limit price; a level's size is the sum of the orders' remaining `sz` and its
  `n` the number of orders.
- **Background liquidity**, fixed per coin (it does not move between pushes: marks are static
  in the simulator). For k = 1..`levels`: a bid at `round_px(mark × (1 − k × step))` and an ask
  at `round_px(mark × (1 + k × step))`, sizes `round_sz(usd / mark)` with `usd` drawn from
  `random.Random(f"book:{seed}:{coin}")` as `randint(lo, hi)`: for each k first the bid's, then
  the ask's (always both, so a skipped level does not shift later ones). A level whose rounded
  price is not strictly below (bid) / above (ask) the mark, or repeats a price already used by
  a nearer k, is skipped. Each background level counts 1 in `n`.

Merging, so that the book is never crossed (a simulated marketable order rests, it is never
matched): bids take precedence over asks, and trader orders over background.
  1. Trader asks priced at or below the best trader bid are left out of the book.
  2. Background asks priced at or below the best trader bid, and background bids priced at or
     above the best remaining trader ask, are left out.
  3. A trader level at a background price joins it (sizes add, `n` = orders + 1).
Levels are sorted best first; a frame shows at most `rules.L2_BOOK_DEPTH` (20) per side.

Snapshots. `snapshot(coin, now_ms)` stamps the current book with a time, strictly increasing
per coin, so that a time names exactly one content: `now_ms` (the simulator clock), except
that a book that changed while the clock did not move gets the previous time + 1 ms, and an
unchanged book asked again at the same clock time is the same snapshot. Every snapshot served
(WS frames, info answers, `ExchangeSim.book`) is kept in a bounded per-coin history keyed by
its time (`at`): the 20-level, full-precision view, exactly as the default subscription's
frame carries it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import orjson

from exchange_sim import rules
from exchange_sim.exchange import Exchange
from exchange_sim.market import Coin, Market, fmt

Level = tuple[Decimal, Decimal, int]  # (px, sz, n)
Side = tuple[Level, ...]


@dataclass(frozen=True)
class Snapshot:
    """A coin's book at `time`: every level (best first), and the default view's JSON."""

    coin: str
    time: int
    bids: Side
    asks: Side
    levels_json: bytes  # `[[bids…],[asks…]]`, 20 levels a side, full precision

    def data(self) -> bytes:
        """The `{"coin","time","levels"}` object of the default (full precision) view."""
        return book_data(self.coin, self.time, self.levels_json)


def levels_json(bids: Side, asks: Side, depth: int = rules.L2_BOOK_DEPTH) -> bytes:
    """`[[{"px","sz","n"}…],[…]]` with at most `depth` levels a side."""
    return orjson.dumps(
        [[{"px": fmt(px), "sz": fmt(sz), "n": n} for px, sz, n in side[:depth]] for side in (bids, asks)]
    )


def aggregate(side: Side, n_sig_figs: int, mantissa: int | None, *, up: bool) -> Side:
    """Group levels into buckets of `mantissa × 10^(exponent − nSigFigs + 1)` (by each price's
    own exponent): bids rounded down, asks up (ASSUMED: the real rounding direction is
    unverified). Sizes and counts add; the order stays best first."""
    out: dict[Decimal, list[Any]] = {}
    for px, sz, n in side:
        q = Decimal(mantissa or 1).scaleb(px.adjusted() - n_sig_figs + 1)
        bucket = (px / q).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * q
        cur = out.get(bucket)
        if cur is None:
            out[bucket] = [sz, n]
        else:
            cur[0] += sz
            cur[1] += n
    return tuple((px, v[0], v[1]) for px, v in out.items())


class OrderBooks:
    """Every coin's book, kept in step with the exchange through its transition listener."""

    def __init__(
        self,
        market: Market,
        exchange: Exchange,
        seed: int,
        *,
        levels: int = 20,
        step: Decimal | str | float = "0.0015",
        level_usd: tuple[int, int] = (1_000, 20_000),
        history: int = 2000,
    ) -> None:
        self.market = market
        self.exchange = exchange
        self.seed = seed
        self.n_levels = levels
        self.step = Decimal(str(step))
        self.level_usd = level_usd
        self.history_size = history
        self._oids: dict[str, dict[int, None]] = {}  # coin -> resting non-trigger oids
        self._levels: dict[str, tuple[Side, Side]] = {}  # coin -> current book (cache)
        self._background: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self._last: dict[str, Snapshot] = {}
        self._history: dict[str, dict[int, bytes]] = {}  # coin -> time -> levels_json

    # ----- maintenance -----------------------------------------------------------------------
    def on_transition(self, user: str, status: str, order: dict[str, Any], time_ms: int) -> str | None:
        """Track resting non-trigger orders (an Exchange transition listener); returns the coin
        whose book changed, if any."""
        if order["isTrigger"]:
            return None
        coin, oid = order["coin"], order["oid"]
        oids = self._oids.setdefault(coin, {})
        if status == rules.OPEN:
            oids[oid] = None
        elif oid in oids:
            del oids[oid]
        else:  # an order that never rested (a reject, an Ioc)
            return None
        self._levels.pop(coin, None)
        return coin

    def known(self, coin: Any) -> bool:
        """True for a coin of the market (main-dex perp, spot pair, HIP-3 coin)."""
        return isinstance(coin, str) and coin in self.market.by_name

    def background(self, coin: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The coin's background bids and asks, px -> sz (fixed per coin and seed)."""
        bg = self._background.get(coin)
        if bg is None:
            bg = self._background[coin] = self._make_background(self.market.by_name[coin])
        return bg

    def _make_background(self, c: Coin) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        rng = random.Random(f"book:{self.seed}:{c.name}")
        lo, hi = self.level_usd
        mark = c.mark_px
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        for k in range(1, self.n_levels + 1):
            bid_usd, ask_usd = rng.randint(lo, hi), rng.randint(lo, hi)
            off = self.step * k
            if off < 1:
                px = self.market.round_px(c, mark * (1 - off))
                if 0 < px < mark and px not in bids:
                    bids[px] = self.market.round_sz(c, Decimal(bid_usd) / mark)
            px = self.market.round_px(c, mark * (1 + off))
            if px > mark and px not in asks:
                asks[px] = self.market.round_sz(c, Decimal(ask_usd) / mark)
        return bids, asks

    def levels(self, coin: str) -> tuple[Side, Side]:
        """Every level of the coin's book, bids and asks best first (not truncated)."""
        cached = self._levels.get(coin)
        if cached is not None:
            return cached
        tb: dict[Decimal, list[Any]] = {}
        ta: dict[Decimal, list[Any]] = {}
        orders = self.exchange.orders
        for oid in self._oids.get(coin, ()):
            o = orders[oid]
            if not o.is_open or o.is_trigger or o.sz <= 0 or o.limit_px <= 0:
                continue
            lv = (tb if o.side == "B" else ta).setdefault(o.limit_px, [Decimal(0), 0])
            lv[0] += o.sz
            lv[1] += 1
        best_tb = max(tb) if tb else None
        if best_tb is not None:
            ta = {px: lv for px, lv in ta.items() if px > best_tb}
        best_ta = min(ta) if ta else None
        bg_bids, bg_asks = self.background(coin)
        for px, sz in bg_bids.items():
            if best_ta is None or px < best_ta:
                lv = tb.setdefault(px, [Decimal(0), 0])
                lv[0] += sz
                lv[1] += 1
        for px, sz in bg_asks.items():
            if best_tb is None or px > best_tb:
                lv = ta.setdefault(px, [Decimal(0), 0])
                lv[0] += sz
                lv[1] += 1
        bids = tuple((px, tb[px][0], tb[px][1]) for px in sorted(tb, reverse=True))
        asks = tuple((px, ta[px][0], ta[px][1]) for px in sorted(ta))
        self._levels[coin] = (bids, asks)
        return bids, asks

    # ----- snapshots -------------------------------------------------------------------------
    def snapshot(self, coin: str, now_ms: int) -> Snapshot:
        """The current book stamped with its time (see the module doc), recorded in the history."""
        bids, asks = self.levels(coin)
        last = self._last.get(coin)
        if last is None:
            t, lj = now_ms, levels_json(bids, asks)
        else:
            same = (last.bids, last.asks) == (bids, asks)
            if same and now_ms <= last.time:
                return last
            t = now_ms if now_ms > last.time else last.time + 1
            lj = last.levels_json if same else levels_json(bids, asks)  # shared while unchanged
        snap = self._last[coin] = Snapshot(coin, t, bids, asks, lj)
        hist = self._history.setdefault(coin, {})
        hist[t] = lj
        while len(hist) > self.history_size:
            del hist[next(iter(hist))]
        return snap

    def at(self, coin: str, time_ms: int) -> dict[str, Any] | None:
        """The snapshot served with this time (default view), or None if unknown or evicted."""
        lj = self._history.get(coin, {}).get(int(time_ms))
        if lj is None:
            return None
        return {"coin": coin, "time": int(time_ms), "levels": orjson.loads(lj)}

    def history(self, coin: str) -> list[dict[str, Any]]:
        """Every retained snapshot of the coin, oldest first."""
        return [{"coin": coin, "time": t, "levels": orjson.loads(lj)} for t, lj in self._history.get(coin, {}).items()]


def view_data(snap: Snapshot, n_sig_figs: int | None, mantissa: int | None, fast: bool) -> bytes:
    """The `data` object of an l2Book frame for a subscription's options: the default view is
    the snapshot's own; `nSigFigs` aggregates; `fast` shows 5 levels and adds `"fast":true`."""
    if n_sig_figs is None and not fast:
        return snap.data()
    bids, asks = snap.bids, snap.asks
    if n_sig_figs is not None:
        bids = aggregate(bids, n_sig_figs, mantissa, up=False)
        asks = aggregate(asks, n_sig_figs, mantissa, up=True)
    depth = rules.L2_BOOK_FAST_DEPTH if fast else rules.L2_BOOK_DEPTH
    return book_data(snap.coin, snap.time, levels_json(bids, asks, depth), fast)


def book_data(coin: str, time_ms: int, levels: bytes, fast: bool = False) -> bytes:
    """An l2Book frame's `data` object, `{"coin","time","levels"}` (and `"fast":true`), as bytes."""
    return (
        b'{"coin":'
        + orjson.dumps(coin)
        + b',"time":'
        + str(time_ms).encode()
        + b',"levels":'
        + levels
        + (b',"fast":true}' if fast else b"}")
    )
