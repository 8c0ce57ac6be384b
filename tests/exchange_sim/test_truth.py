"""Ground-truth file, visibility records and compare() against a hand-made trader_orders collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exchange_sim import ExchangeSim, SimConfig, compare
from exchange_sim.truth import parse_time
from tests.exchange_sim.conftest import START_MS, connect, recv_channel, sub


def doc(user: str, oid: int, action: str, final: str | None = None, seq: int = 0) -> dict[str, Any]:
    key = action if action != "updated" else f"updated:{seq}"
    d = {
        "ethAddress": user,
        "oid": oid,
        "action": action,
        "eventKey": key,
        "seq": seq,
        "source": "ws",
        "sz": "1.0",
        "limitPx": "1.0",
        "origSz": "1.0",
    }
    if action == "closed":
        d["finalStatus"] = final
    return d


async def test_truth_visibility_and_compare(tmp_path: Path, mongo_db: Any) -> None:
    truth = tmp_path / "truth.jsonl"
    cfg = SimConfig(traders=2, push_interval=30, start_time_ms=START_MS, truth_file=truth)
    async with ExchangeSim(cfg) as sim:
        a, b = sim.addresses
        async with connect(sim) as ws:
            await ws.send(sub("openOrders", a))
            await recv_channel(ws, "openOrders")
            o1 = sim.place(a, "BTC", "B", "0.01", "100000.0")
            o2 = sim.place(a, "ETH", "B", "0.1", "2500.0")
            o3 = sim.place(a, "SOL", "A", "1.0", "150.0")
            o4 = sim.place(a, "SOL", "A", "2.0", "151.0")
            await sim.push_now()
            await recv_channel(ws, "openOrders")
            sim.fill(o1)
            sim.cancel(o3, "marginCanceled")
            r1 = sim.reject(a, "BTC", "B", "0.01", "1.0", status="tickRejected")  # never rests
            await sim.push_now()
            await recv_channel(ws, "openOrders")
            await ws.send(json.dumps({"method": "unsubscribe", "subscription": {"type": "openOrders", "user": a}}))
            await recv_channel(ws, "subscriptionResponse")
        g1 = sim.place(a, "BTC", "A", "0.01", "120000.0")  # opened and closed in a gap
        sim.cancel(g1)
        b1 = sim.place(b, "BTC", "A", "0.01", "120000.0")  # b is never subscribed
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert all(set(r) == {"time", "user", "status", "order"} for r in rows)
    assert parse_time(rows[0]["time"]) >= START_MS
    assert [r["status"] for r in rows if r["order"]["oid"] == o1] == ["open", "filled"]
    assert [r["status"] for r in rows if r["order"]["oid"] == r1] == ["tickRejected"]
    summary = json.loads(Path(str(truth) + ".summary.json").read_text())
    assert summary["orders"] == 7 and summary["finalStatuses"]["open"] == 3

    coll = mongo_db["trader_orders"]
    coll.insert_many(
        [
            doc(a, o1, "new"),
            doc(a, o1, "closed", "filled"),
            doc(a, o2, "new"),
            doc(a, o2, "updated", seq=1),
            doc(a, o3, "new"),
            doc(a, o3, "closed", "canceled"),
            doc(b, b1, "new"),
            doc(b, b1, "new"),
            doc(a, 12345, "new"),
        ]
    )
    report = compare(coll, truth)
    assert (report.total, report.observable, report.visible, report.gap_only) == (7, 6, 4, 2)
    assert report.captured == 4
    assert report.missed_visible == [(a, o4)]
    assert report.missed_gap_only == [(a, g1)]
    assert report.wrong_final_status == [(a, o3, "marginCanceled", "canceled")]
    assert report.duplicates == [(b, b1, "2 new events")]
    assert report.unknown == [(a, 12345)]
    assert abs(report.capture_rate - 4 / 6) < 1e-9
    assert not report.ok
    assert "capture_rate=0.6667" in report.summary()

    only_b = compare(coll, truth, users=[b])
    assert (only_b.total, only_b.captured, only_b.unknown) == (1, 1, [])
