"""Seeded random traders that drive the exchange: one `random.Random` per trader, logical ticks."""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal
from pathlib import Path

from exchange_sim import rules
from exchange_sim.exchange import Exchange, OrderError

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


def trader_addresses(seed: int, n: int) -> list[str]:
    """`n` deterministic lower-case 0x addresses derived from `seed`."""
    return ["0x" + hashlib.sha256(f"orderwatch-sim:{seed}:{i}".encode()).hexdigest()[:40] for i in range(n)]


def write_addresses(path: str | Path, addresses: list[str]) -> None:
    """Write the addresses one per line (the collector's TRADER_ADDRESSES_FILE format)."""
    Path(path).write_text("".join(a + "\n" for a in addresses))


class Trader:
    """One simulated account; all of its choices come from its own seeded generator."""

    def __init__(self, address: str, seed: int, index: int) -> None:
        self.address = address
        self.rng = random.Random(f"{seed}:{index}")
        self.carry = 0.0  # fractional actions carried to the next tick

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
        coin = ex.market.coins[rng.randrange(min(40, len(ex.market.coins)))]
        side = rng.choice("BA")
        mark = coin.mark_px
        away = Decimal(str(round(rng.uniform(0.002, 0.03), 4)))
        px = ex.market.round_px(coin, mark * (1 - away if side == "B" else 1 + away))
        notional = Decimal(str(round(rng.uniform(20, 2000), 2)))
        sz = ex.market.round_sz(coin, notional / mark)
        cloid = "0x" + f"{rng.getrandbits(128):032x}" if rng.random() < 0.3 else None
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
                )
            elif action == "reduce_only":
                positions = list(ex.user(self.address).positions.values())
                if positions:
                    pos = positions[rng.randrange(len(positions))]
                    c = ex.market.coin(pos.coin)
                    rside = "A" if pos.szi > 0 else "B"
                    rpx = ex.market.round_px(c, c.mark_px * (Decimal("1.01") if rside == "A" else Decimal("0.99")))
                    rsz = ex.market.round_sz(c, abs(pos.szi) / 2)
                    ex.place(self.address, pos.coin, rside, rsz, rpx, reduce_only=True)
            elif action == "ioc":
                ex.place(
                    self.address,
                    coin.name,
                    side,
                    sz,
                    px,
                    tif="Ioc",
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
                ex.place(self.address, coin.name, side, sz, px, reject_status=rng.choice(REJECT_STATUSES))
        except OrderError:
            pass  # e.g. a reduce-only whose position vanished; the next action is independent


class TraderPool:
    """All simulated traders; `tick(dt_ms)` advances the clock and lets each trader act."""

    def __init__(self, exchange: Exchange, addresses: list[str], seed: int, orders_per_trader_per_min: float) -> None:
        self.exchange = exchange
        self.traders = [Trader(a, seed, i) for i, a in enumerate(addresses)]
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
