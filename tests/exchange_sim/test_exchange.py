"""The exchange state machine and trader model, without sockets."""

from __future__ import annotations

import json

from exchange_sim.clock import LogicalClock
from exchange_sim.exchange import Exchange
from exchange_sim.market import Market
from exchange_sim.traders import TraderPool, trader_addresses
from tests.conftest import FIXTURES

U = "0x" + "ab" * 20


def new_exchange() -> Exchange:
    return Exchange(Market.load(), LogicalClock(1_760_000_000_000))


def test_market_comes_from_the_real_sample() -> None:
    m = Market.load()
    assert m.coin("BTC").mark_px > 0
    assert len(m.coins) > 150


def test_tpsl_children_are_listed_top_level_and_inside_the_parent_like_the_sample() -> None:
    ex = new_exchange()
    parent = ex.place(U, "INJ", "B", "12.5", "10.0", tp_px="10.004", sl_px="9.995")
    listed = ex.frontend_open_orders(U)
    sample = json.loads(
        (FIXTURES / "hyperliquid" / "frontendOpenOrders_rest_response_with_tpsl_children.json").read_text()
    )
    assert [o["oid"] for o in listed] == sorted([parent.oid, *parent.children], reverse=True)
    top = next(o for o in listed if o["oid"] == parent.oid)
    assert sorted(c["oid"] for c in top["children"]) == parent.children
    assert set(sample[2]) <= set(top)  # every key of the real shape (cloid extra)
    kinds = {o["orderType"]: o for o in listed if o["isTrigger"]}
    assert kinds["Take Profit Market"]["triggerCondition"] == "Price above 10.004"
    assert kinds["Stop Market"]["triggerCondition"] == "Price below 9.995"
    assert all(o["reduceOnly"] and o["tif"] is None for o in kinds.values())


def test_partial_fill_keeps_the_oid_amend_replaces_it_and_fills_move_the_position() -> None:
    ex = new_exchange()
    o = ex.place(U, "BTC", "B", "0.01", "100000.0")
    ex.fill(o.oid, "0.004")
    (f,) = ex.frontend_open_orders(U)
    assert (f["oid"], f["sz"], f["origSz"]) == (o.oid, "0.006", "0.01")
    new = ex.amend(o.oid, limit_px="100500.0")  # a partially filled order can be modified
    assert new.oid != o.oid
    (f,) = ex.frontend_open_orders(U)
    assert (f["oid"], f["limitPx"], f["sz"], f["origSz"]) == (new.oid, "100500.0", "0.006", "0.006")
    ex.fill(new.oid)
    assert ex.frontend_open_orders(U) == []
    assert ex.order_status(U, o.oid)["order"]["status"] == "canceled"
    assert ex.order_status(U, new.oid)["order"]["status"] == "filled"
    pos = ex.clearinghouse_state(U)["assetPositions"][0]["position"]
    assert (pos["coin"], pos["szi"]) == ("BTC", "0.01")
    assert [(f["oid"], f["sz"]) for f in ex.user_fills(U)] == [(new.oid, "0.006"), (o.oid, "0.004")]  # newest first


def test_trigger_cancels_the_sibling_and_rejected_orders_never_rest() -> None:
    ex = new_exchange()
    parent = ex.place(U, "ETH", "B", "1.0", "2500.0", tp_px="2700.0", sl_px="2300.0")
    ex.fill(parent.oid)
    tp, sl = parent.children
    ex.trigger(tp)
    assert ex.orders[tp].status == "filled"
    assert ex.orders[sl].status == "siblingFilledCanceled"
    assert ex.clearinghouse_state(U)["assetPositions"] == []
    bad = ex.place(U, "ETH", "B", "1.0", "2500.0", reject_status="perpMarginRejected")
    assert ex.frontend_open_orders(U) == []
    statuses = [(h["order"]["oid"], h["status"]) for h in ex.historical_orders(U)]
    assert statuses[0] == (bad.oid, "perpMarginRejected")
    assert (parent.oid, "open") in statuses and (parent.oid, "filled") in statuses
    assert ex.order_status(U, 1) == {"status": "unknownOid"}


def test_cancelling_a_parent_cancels_its_children() -> None:
    ex = new_exchange()
    parent = ex.place(U, "SOL", "A", "3", "150.0", tp_px="140.0", sl_px="160.0")
    ex.cancel(parent.oid, "marginCanceled")
    assert ex.orders[parent.oid].status == "marginCanceled"
    assert {ex.orders[c].status for c in parent.children} == {"canceled"}


def run_seeded(seed: int) -> list[tuple[str, str, str]]:
    ex = new_exchange()
    rows: list[tuple[str, str, str]] = []
    ex.listeners.append(lambda u, s, o, t: rows.append((u, s, json.dumps(o) + str(t))))
    pool = TraderPool(ex, trader_addresses(seed, 8), seed, orders_per_trader_per_min=120)
    for _ in range(600):
        pool.tick(100)
    return rows


def test_seeded_runs_are_deterministic_and_varied() -> None:
    a, b, c = run_seeded(7), run_seeded(7), run_seeded(8)
    assert a == b
    assert a != c
    statuses = {s for _, s, _ in a}
    assert {"open", "filled", "canceled", "triggered", "siblingFilledCanceled"} <= statuses
    assert any(s.endswith("Rejected") or s == "rejected" for s in statuses)
    assert trader_addresses(7, 3) == trader_addresses(7, 3)
    assert all(a == a.lower() and len(a) == 42 for a in trader_addresses(7, 3))
