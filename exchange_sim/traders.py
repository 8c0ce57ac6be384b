"""Seeded random traders that drive the exchange: one `random.Random` per trader, logical ticks.

Trading styles. About half of the traders (exactly ceil(n/2) of a pool, chosen by the seed) are
"algorithmic": like bots and SDK users they set a client order id (cloid) on nearly every order
(95 %). The others are "manual" (the web frontend) and never set one. This matters for
collectors: a modify is a cancel-and-replace under a new oid, and only the cloid links the two
orders for sure; orders without a cloid must be linked by inference.

Markets. About 10 % of placements are on spot pairs (the busiest 30 of the capture) and about
15 % on HIP-3 dex coins (a dex, then one of its coins, uniformly) when dexes exist; the rest on
the 40 first main-dex perps. Spot orders are never reduce-only and carry no TP/SL.
"""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal
from pathlib import Path

from exchange_sim import rules
from exchange_sim.exchange import Exchange, OrderError
from exchange_sim.market import Coin

MAX_OPEN_PER_TRADER = 25  # beyond this a trader only cancels, amends and gets filled

# Relative weights of what a trader does when it acts.
ACTIONS: list[tuple[str, int]] = [
    ("limit", 30),
    ("limit_tpsl", 8),
    ("trigger", 4),
    ("reduce_only", 5),
    ("ioc", 6),
    ("amend", 12),
    ("partial_fill", 10),
    ("full_fill", 10),
    ("cancel", 12),
    ("fire_trigger", 4),
    ("margin_cancel", 1),
    ("reject", 2),
]
REJECT_STATUSES = ["rejected", "perpMarginRejected", "minTradeNtlRejected", "tickRejected"]
PERP_ONLY_ACTIONS = frozenset({"limit_tpsl", "trigger", "reduce_only"})  # become "limit" on spot
ALGO_CLOID_PROB = 0.95
SPOT_SHARE = 0.10
HIP3_SHARE = 0.15


def trader_addresses(seed: int, n: int) -> list[str]:
    """`n` deterministic lower-case 0x addresses derived from `seed`."""
    return ["0x" + hashlib.sha256(f"orderwatch-sim:{seed}:{i}".encode()).hexdigest()[:40] for i in range(n)]


def write_addresses(path: str | Path, addresses: list[str]) -> None:
    """Write the addresses one per line (the collector's TRADER_ADDRESSES_FILE format)."""
    Path(path).write_text("".join(a + "\n" for a in addresses))


class Trader:
    """One simulated account; all of its choices come from its own seeded generator.

    `algorithmic` None: decided by a seeded coin flip (a TraderPool decides it for its traders).
    """

    def __init__(
        self,
        address: str,
        seed: int,
        index: int,
        *,
        algorithmic: bool | None = None,
        spot_share: float = SPOT_SHARE,
        hip3_share: float = HIP3_SHARE,
    ) -> None:
        self.address = address
        self.rng = random.Random(f"{seed}:{index}")
        if algorithmic is None:
            algorithmic = random.Random(f"style:{seed}:{index}").random() < 0.5
        self.algorithmic = algorithmic
        self.spot_share = spot_share
        self.hip3_share = hip3_share
        self.carry = 0.0  # fractional actions carried to the next tick

    def _coin(self, ex: Exchange) -> Coin:
        rng, market = self.rng, ex.market
        r = rng.random()
        if r < self.spot_share and market.active_spot:
            return market.active_spot[rng.randrange(len(market.active_spot))]
        if r < self.spot_share + self.hip3_share:
            dexes = [d for _, d in sorted(market.dexes.items()) if d.coins]
            if dexes:
                dex = dexes[rng.randrange(len(dexes))]
                return dex.coins[rng.randrange(len(dex.coins))]
        return market.coins[rng.randrange(min(40, len(market.coins)))]

    def _cloid(self) -> str | None:
        if self.algorithmic and self.rng.random() < ALGO_CLOID_PROB:
            return "0x" + f"{self.rng.getrandbits(128):032x}"
        return None

    def act(self, ex: Exchange) -> None:
        """Perform one random action on the exchange."""
        rng = self.rng
        names, weights = zip(*ACTIONS, strict=True)
        action = rng.choices(names, weights)[0]
        open_orders = ex.open_orders(self.address)
        if len(open_orders) >= MAX_OPEN_PER_TRADER and action in (
            "limit",
            "limit_tpsl",
            "trigger",
            "reduce_only",
        ):
            action = "cancel"
        coin = self._coin(ex)
        if coin.spot and action in PERP_ONLY_ACTIONS:
            action = "limit"
        side = rng.choice("BA")
        mark = coin.mark_px
        away = Decimal(str(round(rng.uniform(0.002, 0.03), 4)))
        px = ex.market.round_px(coin, mark * (1 - away if side == "B" else 1 + away))
        notional = Decimal(str(round(rng.uniform(20, 2000), 2)))
        sz = ex.market.round_sz(coin, notional / mark)
        cloid = self._cloid()
        resting = [o for o in open_orders if not o.is_trigger]
        triggers = [o for o in open_orders if o.is_trigger and (o.parent is None or not ex.orders[o.parent].is_open)]
        try:
            if action == "limit":
                tif = rng.choice(["Gtc", "Gtc", "Alo"])
                if tif == "Alo" and rng.random() < 0.1:
                    ex.place(
                        self.address,
                        coin.name,
                        side,
                        sz,
                        px,
                        tif=tif,
                        cloid=cloid,
                        reject_status=rules.BAD_ALO_PX_REJECTED,
                    )
                else:
                    ex.place(self.address, coin.name, side, sz, px, tif=tif, cloid=cloid)
            elif action == "limit_tpsl":
                up, down = mark * Decimal("1.05"), mark * Decimal("0.95")
                tp, sl = (up, down) if side == "B" else (down, up)
                ex.place(
                    self.address,
                    coin.name,
                    side,
                    sz,
                    px,
                    cloid=cloid,
                    tp_px=ex.market.round_px(coin, tp),
                    sl_px=ex.market.round_px(coin, sl),
                )
            elif action == "trigger":
                kind = rng.choice(["tp", "sl"])
                tpx = ex.market.round_px(
                    coin,
                    mark * (Decimal("1.04") if (kind == "tp") == (side == "A") else Decimal("0.96")),
                )
                ex.place(
                    self.address,
                    coin.name,
                    side,
                    sz,
                    0,
                    trigger_px=tpx,
                    tpsl=kind,
                    reduce_only=rng.random() < 0.5,
                    cloid=cloid,
                )
            elif action == "reduce_only":
                positions = list(ex.user(self.address).positions.values())
                if positions:
                    pos = positions[rng.randrange(len(positions))]
                    c = ex.market.coin(pos.coin)
                    rside = "A" if pos.szi > 0 else "B"
                    rpx = ex.market.round_px(c, c.mark_px * (Decimal("1.01") if rside == "A" else Decimal("0.99")))
                    rsz = ex.market.round_sz(c, abs(pos.szi) / 2)
                    ex.place(self.address, pos.coin, rside, rsz, rpx, reduce_only=True, cloid=cloid)
            elif action == "ioc":
                ex.place(
                    self.address,
                    coin.name,
                    side,
                    sz,
                    px,
                    tif="Ioc",
                    cloid=cloid,
                    fill_immediately=rng.random() < 0.7,
                )
            elif action == "amend" and resting:
                o = resting[rng.randrange(len(resting))]
                c = ex.market.coin(o.coin)
                factor = Decimal(str(round(rng.uniform(0.995, 1.005), 4)))
                if rng.random() < 0.5 and o.sz == o.orig_sz:
                    ex.amend(o.oid, sz=ex.market.round_sz(c, o.sz * Decimal("1.5")))
                else:
                    ex.amend(o.oid, limit_px=ex.market.round_px(c, o.limit_px * factor))
            elif action == "partial_fill" and resting:
                o = resting[rng.randrange(len(resting))]
                c = ex.market.coin(o.coin)
                part = ex.market.round_sz(c, o.sz * Decimal("0.4"))
                ex.fill(o.oid, part if part < o.sz else None)
            elif action == "full_fill" and resting:
                ex.fill(resting[rng.randrange(len(resting))].oid)
            elif action == "cancel" and open_orders:
                ex.cancel(open_orders[rng.randrange(len(open_orders))].oid)
            elif action == "fire_trigger" and triggers:
                ex.trigger(triggers[rng.randrange(len(triggers))].oid)
            elif action == "margin_cancel" and resting:
                ex.cancel(resting[rng.randrange(len(resting))].oid, rules.MARGIN_CANCELED)
            elif action == "reject":
                status = rng.choice(REJECT_STATUSES)
                if coin.spot and status == "perpMarginRejected":
                    status = "insufficientSpotBalanceRejected"
                ex.place(self.address, coin.name, side, sz, px, cloid=cloid, reject_status=status)
        except OrderError:
            pass  # e.g. a reduce-only whose position vanished; the next action is independent


class TraderPool:
    """All simulated traders; `tick(dt_ms)` advances the clock and lets each trader act."""

    def __init__(
        self,
        exchange: Exchange,
        addresses: list[str],
        seed: int,
        orders_per_trader_per_min: float,
        *,
        spot_share: float = SPOT_SHARE,
        hip3_share: float = HIP3_SHARE,
    ) -> None:
        self.exchange = exchange
        n = len(addresses)
        algo = set(random.Random(f"styles:{seed}").sample(range(n), (n + 1) // 2))
        self.traders = [
            Trader(a, seed, i, algorithmic=i in algo, spot_share=spot_share, hip3_share=hip3_share)
            for i, a in enumerate(addresses)
        ]
        self.rate_per_ms = orders_per_trader_per_min / 60_000.0

    def tick(self, dt_ms: float) -> None:
        """Advance simulated time by `dt_ms` and run the actions due, in trader order."""
        self.exchange.clock.advance(dt_ms)
        if self.rate_per_ms <= 0:
            return
        for t in self.traders:
            t.carry += self.rate_per_ms * dt_ms
            n = int(t.carry)
            t.carry -= n
            # Randomize the fractional remainder so low rates still act at random moments.
            if t.carry > 0 and t.rng.random() < t.carry:
                n += 1
                t.carry -= 1.0
            for _ in range(n):
                t.act(self.exchange)
