"""A modify is a cancel-and-replace (new oid, same cloid, old oid canceled), as on mainnet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange_sim import ExchangeSim, SimConfig
from exchange_sim.clock import LogicalClock
from exchange_sim.exchange import Exchange, OrderError
from exchange_sim.market import Market
from exchange_sim.truth import TruthRecorder, load_truth
from tests.exchange_sim.conftest import START_MS, connect, recv_channel, sub

U = "0x" + "cd" * 20
CLOID = "0x" + "ab" * 16


def new_exchange(**kw: Any) -> tuple[Exchange, list[tuple[str, int, int, dict[str, Any]]]]:
    """An exchange and the (status, oid, time, order) of every transition, in emission order."""
    ex = Exchange(Market.load(), LogicalClock(START_MS), **kw)
    rows: list[tuple[str, int, int, dict[str, Any]]] = []
    ex.listeners.append(lambda u, s, o, t: rows.append((s, o["oid"], t, o)))
    return ex, rows


def test_modify_is_a_new_oid_with_the_same_cloid_and_the_old_oid_ends_canceled() -> None:
    ex, rows = new_exchange()
    old = ex.place(U, "ETH", "B", "1.5", "2500.0", tif="Alo", cloid=CLOID)
    ex.clock.advance(1000)
    rows.clear()
    new = ex.amend(old.oid, sz="2.0", limit_px="2490.0")

    assert new.oid != old.oid and new.oid > old.oid
    assert new.cloid == old.cloid == CLOID
    assert (new.user, new.coin, new.side, new.tif, new.order_type, new.reduce_only) == (
        U,
        "ETH",
        "B",
        "Alo",
        "Limit",
        False,
    )
    assert (str(new.sz), str(new.orig_sz), str(new.limit_px)) == ("2.0", "2.0", "2490.0")
    assert new.timestamp == START_MS + 1000 > old.timestamp
    # the replacement's open comes FIRST, then the old order's canceled, at the same time
    assert [(s, oid) for s, oid, _, _ in rows] == [("open", new.oid), ("canceled", old.oid)]
    assert rows[0][2] == rows[1][2] == new.timestamp
    assert rows[1][3]["limitPx"] == "2500.0" and rows[1][3]["cloid"] == CLOID
    assert [o["oid"] for o in ex.frontend_open_orders(U)] == [new.oid]

    assert ex.order_status(U, old.oid)["order"]["status"] == "canceled"
    assert ex.order_status(U, new.oid)["order"]["status"] == "open"
    by_cloid = ex.order_status(U, CLOID.upper().replace("0X", "0x"))
    assert by_cloid["order"]["order"]["oid"] == new.oid  # the newest order with that cloid
    hist = [(h["order"]["oid"], h["status"], h["statusTimestamp"]) for h in ex.historical_orders(U)]
    assert hist == [
        (old.oid, "canceled", new.timestamp),
        (new.oid, "open", new.timestamp),
        (old.oid, "open", old.timestamp),
    ]
    with pytest.raises(OrderError):
        ex.amend(old.oid, limit_px="2480.0")  # the old oid is gone for good


def test_modify_without_a_cloid_and_a_chain_of_modifies() -> None:
    ex, rows = new_exchange()
    a = ex.place(U, "SOL", "A", "3", "150.0")
    ex.fill(a.oid, "1")  # partial fill keeps the oid: sz down, origSz unchanged
    assert (a.oid, str(a.sz), str(a.orig_sz)) == (a.oid, "2", "3")
    b = ex.amend(a.oid, limit_px="151.0")  # price only: sz = origSz = the remaining size
    c = ex.amend(b.oid, sz="5")
    assert a.cloid is None and b.cloid is None and c.cloid is None
    assert (str(b.sz), str(b.orig_sz), str(b.limit_px)) == ("2", "2", "151.0")
    assert (str(c.sz), str(c.orig_sz), str(c.limit_px)) == ("5", "5", "151.0")
    assert ex.replaced == {b.oid: a.oid, c.oid: b.oid}
    assert [(s, oid) for s, oid, _, _ in rows if oid in (b.oid, c.oid) or s != "open"] == [
        ("open", b.oid),
        ("canceled", a.oid),
        ("open", c.oid),
        ("canceled", b.oid),
    ]
    assert [o.oid for o in ex.open_orders(U)] == [c.oid]
    # the position from the partial fill is untouched by the modifies
    pos = ex.clearinghouse_state(U)["assetPositions"][0]["position"]
    assert (pos["coin"], pos["szi"]) == ("SOL", "-1.0")


def test_modify_keeps_oid_switch_amends_in_place() -> None:
    ex, rows = new_exchange(modify_keeps_oid=True)
    o = ex.place(U, "BTC", "B", "0.01", "100000.0", cloid=CLOID)
    rows.clear()
    same = ex.amend(o.oid, sz="0.02", limit_px="100500.0")
    assert same is o and same.oid == o.oid
    assert [(s, oid) for s, oid, _, _ in rows] == [("open", o.oid)]
    assert (rows[0][3]["sz"], rows[0][3]["origSz"], rows[0][3]["limitPx"]) == ("0.02", "0.02", "100500.0")
    assert ex.order_status(U, o.oid)["order"]["status"] == "open"
    assert [h["status"] for h in ex.historical_orders(U)] == ["open"]  # no new history entry
    assert ex.replaced == {}


def test_tpsl_children_move_to_the_replacement_and_keep_their_oids() -> None:
    ex, _ = new_exchange()
    parent = ex.place(U, "ETH", "B", "1.0", "2500.0", tp_px="2700.0", sl_px="2300.0", cloid=CLOID)
    tp, sl = parent.children
    new = ex.amend(parent.oid, limit_px="2510.0")
    assert new.children == [tp, sl] and parent.children == []
    assert ex.orders[tp].parent == ex.orders[sl].parent == new.oid
    assert ex.orders[tp].is_open and ex.orders[sl].is_open
    listed = {o["oid"]: o for o in ex.frontend_open_orders(U)}
    assert set(listed) == {new.oid, tp, sl}
    assert sorted(c["oid"] for c in listed[new.oid]["children"]) == [tp, sl]
    # a modified child takes its place in the bracket
    sl2 = ex.amend(sl, limit_px="2250.0")
    assert ex.orders[sl2.oid].parent == new.oid and new.children == [tp, sl2.oid]
    assert ex.orders[sl2.oid].is_trigger and ex.orders[sl2.oid].order_type == "Stop Market"
    assert ex.orders[sl2.oid].trigger_condition == ex.orders[sl].trigger_condition
    with pytest.raises(OrderError):
        ex.trigger(tp)  # still waits for its (new) parent
    ex.fill(new.oid)
    ex.trigger(tp)
    assert ex.orders[tp].status == "filled" and ex.orders[sl2.oid].status == "siblingFilledCanceled"


def test_truth_file_marks_the_replacement_and_the_summary_counts_it(tmp_path: Path) -> None:
    ex, _ = new_exchange()
    rec = TruthRecorder(tmp_path / "t.jsonl", None)
    ex.replace_listeners.append(rec.on_replace)
    ex.listeners.append(rec.on_transition)
    a = ex.place(U, "BTC", "B", "0.01", "100000.0", cloid=CLOID)
    b = ex.amend(a.oid, limit_px="99000.0")
    ex.fill(b.oid, "0.004")  # a partial fill's open line is no replacement
    rec.close()
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [(r["status"], r["order"]["oid"], r.get("replaces")) for r in lines] == [
        ("open", a.oid, None),
        ("open", b.oid, a.oid),
        ("canceled", a.oid, None),
        ("open", b.oid, None),
    ]
    assert "replaces" not in lines[0] and "replaces" not in lines[3]
    assert rec.summary()["replacements"] == 1
    truth = load_truth(tmp_path / "t.jsonl")
    assert truth[(U, b.oid)].replaces == a.oid and truth[(U, a.oid)].replaces is None
    assert truth[(U, a.oid)].last_status == "canceled"


async def test_sim_amend_returns_the_new_oid_over_ws_and_info(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    cfg = SimConfig(traders=1, push_interval=30, start_time_ms=START_MS, truth_file=truth)
    async with ExchangeSim(cfg) as sim:
        u = sim.addresses[0]
        old = sim.place(u, "BTC", "B", "0.01", "100000.0", cloid=CLOID)
        async with connect(sim) as ws:
            await ws.send(sub("openOrders", u))
            await recv_channel(ws, "openOrders")
            new = sim.amend(old, sz="0.02")
            assert isinstance(new, int) and new != old
            frame = await recv_channel(ws, "openOrders")
            (o,) = frame["data"]["orders"]
            assert (o["oid"], o["cloid"], o["sz"], o["origSz"]) == (new, CLOID, "0.02", "0.02")
        async with aiohttp.ClientSession() as s:
            async with s.post(sim.info_url, json={"type": "orderStatus", "user": u, "oid": old}) as r:
                assert (await r.json())["order"]["status"] == "canceled"
            async with s.post(sim.info_url, json={"type": "orderStatus", "user": u, "oid": CLOID}) as r:
                assert (await r.json())["order"]["order"]["oid"] == new
    rows = [json.loads(x) for x in truth.read_text().splitlines()]
    assert [r.get("replaces") for r in rows] == [None, old, None]
    summary = json.loads(Path(str(truth) + ".summary.json").read_text())
    assert summary["replacements"] == 1


async def test_sim_modify_keeps_oid_config() -> None:
    async with ExchangeSim(SimConfig(traders=1, modify_keeps_oid=True)) as sim:
        u = sim.addresses[0]
        oid = sim.place(u, "BTC", "B", "0.01", "100000.0")
        assert sim.amend(oid, limit_px="100100.0") == oid
        assert sim.order(oid).status == "open" and str(sim.order(oid).limit_px) == "100100.0"


def test_cli_flags_reach_the_config() -> None:
    from exchange_sim.__main__ import parse_args

    cfg = parse_args(["--modify-keeps-oid", "--no-hip3-dexes", "--spot-order-share", "0", "--hip3-order-share", "0.3"])
    assert (cfg.modify_keeps_oid, cfg.hip3_dexes, cfg.spot_order_share, cfg.hip3_order_share) == (True, False, 0.0, 0.3)
    d = parse_args([])
    assert (d.modify_keeps_oid, d.hip3_dexes, d.spot_order_share, d.hip3_order_share) == (False, True, 0.1, 0.15)
