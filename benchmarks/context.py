"""Benchmark: what fills and order-book context add per frame, and subscriptions per address.

* CPU per ``l2Book`` frame (decode 20 + 20 levels, keep the coin's book), per event stamped with
  its book, and per fill stored (``userFills`` element to document) — beside the frame hot path's
  cost of one ``openOrders`` frame that changed (the same simulated busy trader as benchmark 1).
* Subscriptions one egress address holds for 10 traders of the simulator trading at random for a
  simulated hour: per trader ``openOrders`` + ``clearinghouseState`` per dex (3 dexes) and one
  ``userFills``, plus one ``l2Book`` per coin where any of them has a resting order — against the
  exchange's 1000 per IP.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from benchmarks.frames import HotPath, busy_trader, open_orders_bytes
from benchmarks.measure import per_call
from benchmarks.report import Section
from collector_service import exchange
from collector_service.events.books import Books
from collector_service.events.fills import fill_doc
from collector_service.events.wire import L2BookMsg, decode_frame
from exchange_sim import ExchangeSim, SimConfig

OBSERVED = datetime(2026, 11, 25, tzinfo=UTC)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def subscriptions_for_ten(hours: float = 1.0) -> tuple[int, int, int]:
    """(user subscriptions, book subscriptions, dexes) for 10 random traders after ``hours``."""
    sim = ExchangeSim(SimConfig(traders=10, orders_per_trader_per_min=2.0))
    for _ in range(int(hours * 3600)):
        sim.tick(1000)
    dexes = 1 + len(sim.market.dexes)
    coins = {o.coin for a in sim.addresses for o in sim.exchange.open_orders(a) if not o.is_trigger}
    return 10 * (2 * dexes + 3), len(coins), dexes  # + userFills, twapStates, orderUpdates


def run(quick: bool = False) -> Section:
    section = Section("context", "Fills and order-book context: extra CPU per frame, subscriptions per address")
    user, before, after = busy_trader()
    a, b = open_orders_bytes(user, before), open_orders_bytes(user, after)
    journal = tempfile.TemporaryDirectory()
    hot = HotPath(user, Path(journal.name))  # the whole per-frame path, journal append included
    book_msg = decode_frame(json.dumps({"channel": "l2Book", "data": {
        "coin": "BTC", "time": 1_795_600_000_000,
        "levels": [[{"px": str(100_000 - i * 10), "sz": "0.5", "n": 3} for i in range(20)],
                   [{"px": str(100_010 + i * 10), "sz": "0.5", "n": 2} for i in range(20)]]}}))
    assert isinstance(book_msg, L2BookMsg)
    books = Books()
    books.on_frame(book_msg.data)
    event = {"action": "updated", "coin": "BTC", "side": "B", "limitPx": "99950.0", "sz": "0.1", "isTrigger": False,
             "triggerPx": "0.0"}
    fill = msgspec.Raw(json.dumps({
        "coin": "BTC", "px": "100005.0", "sz": "0.01", "side": "B", "time": 1_795_600_000_000,
        "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": "0x" + "ab" * 32,
        "oid": 300_000_000_001, "crossed": False, "fee": "0.1", "tid": 900_000_000_000_001, "feeToken": "USDC",
        "cloid": "0x" + "cd" * 16}).encode())
    state = [0]

    def changed_frame() -> None:
        state[0] ^= 1
        hot(a if state[0] else b)

    number, repeat = (200, 3) if quick else (2000, 7)
    t = per_call({
        "frame": changed_frame,
        "book": lambda: books.on_frame(book_msg.data),
        "stamp": lambda: books.stamp([dict(event)]),
        "fill": lambda: fill_doc(user, fill, source="ws", observed_at=OBSERVED),
    }, number=number, repeat=repeat)
    journal.cleanup()
    section.add("changed openOrders frame, hot path (benchmark 1's trader)", us(t["frame"]))
    section.add("l2Book frame (20 + 20 levels): decode and keep", us(t["book"]))
    section.add("stamping one new/updated event with its book", us(t["stamp"]))
    section.add("one fill to its document", us(t["fill"]))
    section.add("a changed frame's ~4 events stamped, vs the frame", f"{4 * t['stamp'] / t['frame']:.2f}x")
    users, coins, dexes = subscriptions_for_ten(0.1 if quick else 1.0)
    total = users + coins
    section.add(f"subscriptions for 10 traders: user ({dexes} dexes + userFills, twapStates, orderUpdates) + l2Book "
                "(coins with resting orders)",
                f"{users} + {coins} = {total}")
    section.add("share of the exchange's 1000 subscriptions per IP", f"{total / exchange.MAX_SUBSCRIPTIONS_PER_IP:.0%}",
                "< 100%", total < exchange.MAX_SUBSCRIPTIONS_PER_IP)
    section.checks["book_stamp_in_range"] = books.fresh("BTC") is not None
    section.notes.append("medians of interleaved rounds; l2Book frames arrive per watched coin when its book "
                         "changes, fills per fill: their cost is per message, not per order frame")
    return section
