"""Benchmark 3: resident memory per tracked open order (10k, 100k, 1M orders, many traders).

The parent writes every trader's ``openOrders`` frame to a file once (orders drawn like the
simulator's trader model: its coins, tick rounding, size range, time-in-force mix, TP/SL
brackets, triggers and client ids). Each size is then measured in a fresh process that streams
the frames through the real ``decode_frame`` + ``OrderBook.apply_raw`` path and reports the growth of
its resident set (RSS) once the frames are gone: what the collector holds per order it tracks.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import struct
import tempfile
from decimal import Decimal
from pathlib import Path

import orjson
import psutil

from benchmarks.measure import run_child
from benchmarks.report import Section
from collector_service.events.tracker import OrderBook
from collector_service.events.wire import decode_frame
from exchange_sim.market import Market
from exchange_sim.orders import Order
from exchange_sim.traders import trader_addresses

START_MS = 1_750_000_000_000
TARGET_BYTES = 300
_LEN = struct.Struct("<I")


def trader_orders(rng: random.Random, market: Market, user: str, n: int, oid: int) -> tuple[list[dict], int]:
    """``n`` open orders of one trader in the frontendOpenOrders shape; returns them and the next oid."""
    coins = market.coins[:40]
    out: list[dict] = []
    while len(out) < n:
        coin = coins[rng.randrange(len(coins))]
        side = rng.choice("BA")
        away = Decimal(str(round(rng.uniform(0.002, 0.03), 4)))
        px = market.round_px(coin, coin.mark_px * (1 - away if side == "B" else 1 + away))
        sz = market.round_sz(coin, Decimal(str(round(rng.uniform(20, 2000), 2))) / coin.mark_px)
        oid += 1
        kind = rng.choices(["limit", "bracket", "trigger", "reduce"], [30, 8, 4, 5])[0]
        order = Order(user, oid, coin.name, side, px, sz, sz, START_MS + oid % 86_400_000,
                      tif=rng.choice(["Gtc", "Gtc", "Alo"]), reduce_only=kind == "reduce",
                      cloid=f"0x{rng.getrandbits(128):032x}" if rng.random() < 0.3 else None)
        if kind == "trigger":
            order.is_trigger, order.tif, order.order_type = True, None, "Stop Market"
            order.trigger_px = market.round_px(coin, coin.mark_px * Decimal("0.96"))
            order.trigger_condition = f"Price below {order.trigger_px}"
        if rng.random() < 0.3:  # partly filled
            order.sz = market.round_sz(coin, sz * Decimal("0.6"))
        children = []
        if kind == "bracket":
            for tpsl, mult in (("tp", Decimal("1.05")), ("sl", Decimal("0.95"))):
                oid += 1
                trigger = market.round_px(coin, coin.mark_px * mult)
                child = Order(user, oid, coin.name, "A" if side == "B" else "B",
                              market.round_px(coin, trigger * Decimal("0.9")), sz, sz, order.timestamp, tif=None,
                              reduce_only=True, is_trigger=True, trigger_px=trigger,
                              order_type="Take Profit Market" if tpsl == "tp" else "Stop Market",
                              trigger_condition=f"Price above {trigger}")
                children.append(child.frontend())
        out.append(order.frontend(children))
        out.extend(children)
    return out, oid


def write_frames(path: Path, total_orders: int, seed: int = 3) -> list[int]:
    """Write traders' frames until ``total_orders``; return the cumulative order count per trader."""
    rng, market = random.Random(seed), Market.load()
    counts, total, oid = [], 0, 300_000_000_000
    users = iter(trader_addresses(seed, total_orders))
    with path.open("wb") as f:
        while total < total_orders:
            user = next(users)
            orders, oid = trader_orders(rng, market, user, rng.randint(5, 45), oid)
            frame = orjson.dumps({"channel": "openOrders", "data": {"dex": "", "user": user, "orders": orders}})
            f.write(_LEN.pack(len(frame)) + frame)
            total += len(orders)
            counts.append(total)
    return counts


def measure(path: Path, traders: int) -> dict[str, float]:
    """In this (fresh) process: RSS growth from tracking the first ``traders`` frames' orders."""
    proc = psutil.Process()
    gc.collect()
    books: dict[str, OrderBook] = {}
    base = proc.memory_info().rss
    with path.open("rb") as f:
        for _ in range(traders):
            (size,) = _LEN.unpack(f.read(4))
            msg = decode_frame(f.read(size))
            book = books[msg.data.user] = OrderBook(msg.data.user)
            book.apply_raw(msg.data.orders, observed_at=None)  # type: ignore[arg-type]
    gc.collect()
    orders = sum(len(b.orders) for b in books.values())
    return {"orders": orders, "traders": len(books), "rss_bytes": proc.memory_info().rss - base}


def run(quick: bool = False) -> Section:
    section = Section("memory", "3. Memory per tracked open order (RSS growth, fresh process)")
    sizes = [10_000, 50_000] if quick else [10_000, 100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.bin"
        counts = write_frames(path, sizes[-1])
        for size in sizes:
            traders = next(i + 1 for i, c in enumerate(counts) if c >= size)
            got = run_child("benchmarks.memory", str(path), str(traders))
            per_order = got["rss_bytes"] / got["orders"]
            label = f"{got['orders']:,} orders / {got['traders']:,} traders"
            if size == sizes[-1]:
                section.add(f"{label}: bytes per order", f"{per_order:.0f} B", f"<= {TARGET_BYTES} B",
                            per_order <= TARGET_BYTES)
            else:
                section.add(f"{label}: bytes per order", f"{per_order:.0f} B")
            section.checks[f"tracked_{size}"] = got["orders"] >= size
    section.notes.append("orders per trader uniform 5..45 plus TP/SL children; RSS includes per-trader book overhead")
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="measure tracker memory (child of benchmark 3)")
    parser.add_argument("frames", type=Path)
    parser.add_argument("traders", type=int)
    args = parser.parse_args()
    print(json.dumps(measure(args.frames, args.traders)))
