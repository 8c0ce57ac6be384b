"""A scripted whale: one simulated trader whose orders, positions and TWAPs cross every alert
threshold, so that a demo shows alerts (``SimConfig.whale``, ``--whale``).

The whale (the first simulated trader, taken out of the random trading pool) repeats one cycle
of :data:`CYCLE_S` simulated seconds on BTC, from a deposit of :data:`DEPOSIT` USD:

====  ==========================================================================================
  0   a resting buy of :data:`OPEN_USD` just under the mark (an order above any large-change
      threshold), filled 3 s later: a position opened
  6   a second resting buy of :data:`ADD_USD`, filled at 8 s: the position added to
 10   a TWAP of :data:`TWAP_USD` on ETH over :data:`TWAP_MINUTES` minutes, buying and selling in
      turn (started only when its last one ended, so the ETH position goes back to flat)
 12   the BTC mark moved down in :data:`MARK_STEPS` steps, 3 s apart, to :data:`NEAR_PCT` % above
      the position's liquidation price (as the exchange serves it), and held there
 50   the mark back where the cycle found it
 53   half the position sold (an IOC): the position reduced
 56   the rest sold: the position closed
====  ==========================================================================================

The mark goes back before the sales, so a cycle costs the whale only fees and the account stays
far from liquidation; other traders' BTC positions see the same mark moves. Everything goes
through :class:`~exchange_sim.exchange.Exchange` like any trader's orders (ground truth, feeds,
node files).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from exchange_sim.exchange import Exchange, OrderError
from exchange_sim.twaps import Twaps

COIN = "BTC"
TWAP_COIN = "ETH"
DEPOSIT = Decimal(400_000)
OPEN_USD = Decimal(1_500_000)
ADD_USD = Decimal(1_000_000)
TWAP_USD = Decimal(300_000)
TWAP_MINUTES = 5
NEAR_PCT = Decimal(5)
"""Where the mark is held: this many % of the mark above the liquidation price (alert rules: 10 %)."""
MARK_STEPS = 4
CYCLE_S = 60
BELOW_MARK = Decimal("0.9995")
"""A resting buy's price against the mark."""


class Whale:
    """The whale's cycle, run by :meth:`tick` on the exchange's logical clock."""

    def __init__(self, exchange: Exchange, twaps: Twaps, address: str, move_mark: Callable[[str, Decimal], object]):
        self.exchange = exchange
        self.twaps = twaps
        self.address = address
        self.move_mark = move_mark
        exchange.user(address).deposit = DEPOSIT
        self.start_ms = exchange.clock.now_ms()
        self.done = 0  # steps of the current cycle done
        self.resting: int | None = None  # the buy waiting for its fill
        self.mark_before = Decimal(0)
        self.mark_path: list[Decimal] = []
        self.twap_id: int | None = None
        self.twap_side = "B"
        self.steps: list[tuple[int, Callable[[], None]]] = [
            (0, lambda: self._buy(OPEN_USD)),
            (3, self._fill),
            (6, lambda: self._buy(ADD_USD)),
            (8, self._fill),
            (10, self._twap),
            *((12 + 3 * i, self._mark_step) for i in range(MARK_STEPS)),
            (50, self._mark_back),
            (53, lambda: self._sell(Decimal("0.5"))),
            (56, lambda: self._sell(Decimal(1))),
        ]

    def tick(self) -> None:
        """Run every step due by the clock's time, cycle after cycle."""
        now = self.exchange.clock.now_ms()
        while True:
            if self.done == len(self.steps):
                self.start_ms += CYCLE_S * 1000
                self.done = 0
            at, step = self.steps[self.done]
            if self.start_ms + at * 1000 > now:
                return
            self.done += 1
            try:
                step()
            except OrderError:
                pass  # e.g. a fill of an order cancelled meanwhile: the next step is independent

    def _mark(self, coin: str) -> Decimal:
        return self.exchange.market.coin(coin).mark_px

    def _buy(self, usd: Decimal) -> None:
        market = self.exchange.market
        coin = market.coin(COIN)
        px = market.round_px(coin, coin.mark_px * BELOW_MARK)
        self.resting = self.exchange.place(self.address, COIN, "B", market.round_sz(coin, usd / px), px).oid

    def _fill(self) -> None:
        if self.resting is not None:
            oid, self.resting = self.resting, None
            self.exchange.fill(oid)

    def _twap(self) -> None:
        if self.twap_id is not None and self.twap_id in self.twaps.active:
            return
        coin = self.exchange.market.coin(TWAP_COIN)
        sz = self.exchange.market.round_sz(coin, TWAP_USD / coin.mark_px)
        self.twap_id = self.twaps.start(self.address, TWAP_COIN, self.twap_side, sz, TWAP_MINUTES).twap_id
        self.twap_side = "A" if self.twap_side == "B" else "B"

    def _liquidation_px(self) -> Decimal | None:
        for entry in self.exchange.clearinghouse_state(self.address)["assetPositions"]:
            held = entry["position"]
            if held["coin"] == COIN and held["liquidationPx"] is not None and Decimal(held["szi"]) > 0:
                return Decimal(held["liquidationPx"])
        return None

    def _mark_step(self) -> None:
        if not self.mark_path:  # the first step plans the path from here to NEAR_PCT above liquidation
            liq = self._liquidation_px()
            if liq is None:
                return
            self.mark_before = self._mark(COIN)
            target = liq / (1 - NEAR_PCT / 100)
            if target >= self.mark_before:
                return
            span = self.mark_before - target
            self.mark_path = [self.mark_before - span * (i + 1) / MARK_STEPS for i in range(MARK_STEPS)]
        if self.mark_path:
            self.move_mark(COIN, self.exchange.market.round_px(self.exchange.market.coin(COIN), self.mark_path.pop(0)))

    def _mark_back(self) -> None:
        if self.mark_before:
            self.move_mark(COIN, self.mark_before)
        self.mark_before, self.mark_path = Decimal(0), []

    def _sell(self, share: Decimal) -> None:
        market = self.exchange.market
        position = self.exchange.user(self.address).positions.get(COIN)
        if position is None or position.szi <= 0:
            return
        coin = market.coin(COIN)
        sz = position.szi if share == 1 else market.round_sz(coin, position.szi * share)
        self.exchange.place(self.address, COIN, "A", sz, coin.mark_px, tif="Ioc", reduce_only=True,
                            fill_immediately=True)
