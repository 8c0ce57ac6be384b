"""Order-book context end to end: every stamp is checked against the simulator's own book.

The simulator serves ``l2Book`` from its traders' resting orders plus background liquidity and
keeps every snapshot it served; the collector stamps new/updated events with the book it held.
Each stamp is recomputed here, independently, from exactly the snapshot the simulator served at
the stamp's ``bookAt``; the first order on a coin nobody watched yet carries nulls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector_service import schema
from exchange_sim import ExchangeSim, SimConfig
from tests.collector.harness import RunningCollector, collector_settings, eventually


def expected(book: dict[str, Any], side: str, px: float, sz: float) -> dict[str, Any]:
    bids = [(float(level["px"]), float(level["sz"])) for level in book["levels"][0]]
    asks = [(float(level["px"]), float(level["sz"])) for level in book["levels"][1]]
    mid = (bids[0][0] + asks[0][0]) / 2
    mine = bids if side == "B" else asks
    if side == "B":
        ahead = sum(p * s for p, s in mine if p >= px)
        within = sum(p * s for p, s in mine if p >= mid * 0.99)
        distance = (mid - px) / mid * 1e4
    else:
        ahead = sum(p * s for p, s in mine if p <= px)
        within = sum(p * s for p, s in mine if p <= mid * 1.01)
        distance = (px - mid) / mid * 1e4
    level = next((s for p, s in mine if p == px), None)
    return {"bookMidPx": mid, "distanceBps": distance, "depthAheadUsd": ahead,
            "levelShare": sz / level if level else None, "bookDepth1pctUsd": within}


@pytest.mark.parametrize("feed", ["openOrders", "webData2"])
async def test_stamps_match_the_book_the_exchange_served(feed: str, tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    db = mongo_db
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
        alice, bob = sim.addresses
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", [alice, bob], trader_ws_feed=feed)
        async with RunningCollector(settings) as run:
            first = sim.place(alice, "BTC", "B", "0.5", "60000")
            await eventually(lambda: db.trader_orders.find_one({"oid": first}), what="first order")
            assert {db.trader_orders.find_one({"oid": first})[k] for k in schema.BOOK_FIELDS} == {None}
            books = run.service.pipeline.l2books
            assert books is not None
            await eventually(lambda: books.fresh("BTC") is not None, what="BTC book watched")
            mark = float(sim.book("BTC")["levels"][0][0]["px"])
            placed = [
                sim.place(alice, "BTC", "B", "0.01", str(round(mark * 0.997))),  # inside the book
                sim.place(bob, "BTC", "A", "0.02", str(round(mark * 1.004))),
                sim.place(bob, "BTC", "B", "0.03", str(round(mark * 0.80))),  # below its 20 levels
            ]
            await eventually(lambda: all(db.trader_orders.find_one({"oid": o}) for o in placed), what="stamped orders")
            sim.fill(placed[0], "0.004")
            await eventually(lambda: db.trader_orders.find_one({"oid": placed[0], "eventKey": "updated:1"}),
                             what="a partial fill, stamped too")
        stamped = list(db.trader_orders.find({"oid": {"$in": placed}, "action": {"$in": ["new", "updated"]}}))
        assert len(stamped) == 4
        for doc in stamped:
            at = doc["bookAt"]
            assert at is not None, doc
            book = sim.book_at("BTC", int(at.timestamp() * 1000))
            assert book is not None, f"no book served at {at}"
            want = expected(book, doc["side"], float(doc["limitPx"]), float(doc["sz"]))
            for field, value in want.items():
                assert doc[field] == (pytest.approx(value) if value is not None else None), (field, doc["oid"])
        far = db.trader_orders.find_one({"oid": placed[2], "action": "new"})
        assert far["levelShare"] is None and far["distanceBps"] > 1000
