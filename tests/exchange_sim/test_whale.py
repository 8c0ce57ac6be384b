"""The scripted whale (``SimConfig.whale``): one cycle crosses every alert threshold on the
exchange's own record: large resting orders, a position opened / added / reduced / closed, a
large TWAP, and the mark held near the position's liquidation price without liquidating it."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from exchange_sim import ExchangeSim, SimConfig, whale
from tests.exchange_sim.conftest import START_MS


def run_to(sim: ExchangeSim, second: float) -> None:
    """Advance the held simulated clock to ``second`` after the start, in 0.5 s ticks."""
    while sim.clock.now_ms() < START_MS + second * 1000:
        sim.tick(500)


def btc(sim: ExchangeSim, address: str) -> Decimal:
    position = sim.exchange.user(address).positions.get("BTC")
    return Decimal(0) if position is None else position.szi


async def test_the_whale_cycle_crosses_every_alert_threshold_and_is_not_liquidated() -> None:
    cfg = SimConfig(traders=3, whale=True, orders_per_trader_per_min=0.0, start_time_ms=START_MS)
    async with ExchangeSim(cfg) as sim:
        sim.hold_clock(True)  # the test moves the clock itself
        address = sim.addresses[0]
        mark = sim.market.coin("BTC").mark_px
        sizes, distances = [], []
        for second in range(whale.CYCLE_S):
            run_to(sim, second + 0.25)
            sizes.append(btc(sim, address))
            state = sim.exchange.clearinghouse_state(address)
            held = [p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "BTC"]
            if held:
                now = sim.market.coin("BTC").mark_px
                distances.append((now - Decimal(held[0]["liquidationPx"])) / now * 100)
        orders = [o for o in sim.exchange.orders.values() if o.user == address and o.coin == "BTC"]
        placed = [o.orig_sz * o.limit_px for o in orders if o.tif == "Gtc"]
        assert len(placed) == 2 and min(placed) >= 900_000  # far above the 100k large-change threshold
        changes = [b for a, b in pairwise(sizes) if a != b]
        assert [s > 0 for s in changes] == [True, True, True, False]  # open, add, reduce, close
        assert changes[1] > changes[0] > changes[2] > 0 and changes[3] == 0
        assert 4 <= min(distances) <= 6 and max(distances) > 12  # held ~5 % from liquidation, from ~15 %
        assert not [o for o in sim.exchange.orders.values() if o.tif == "LiquidationMarket"]
        assert sim.market.coin("BTC").mark_px == mark  # the mark is back
        twap = sim.twap(whale_twap(sim, address))
        assert twap.coin == "ETH" and twap.sz * sim.market.coin("ETH").mark_px >= 250_000
        realized = sim.exchange.user(address).realized
        assert abs(realized) < 5_000  # a cycle costs only fees, earned back by buying under the mark

        run_to(sim, whale.CYCLE_S + 0.25)  # the next cycle begins with the next large order
        assert len([o for o in sim.exchange.orders.values() if o.user == address and o.tif == "Gtc"]) == 3


def whale_twap(sim: ExchangeSim, address: str) -> int:
    (twap,) = sim.twaps.by_user[address]
    return twap.twap_id
