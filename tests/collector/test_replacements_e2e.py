"""Modifies and every market end to end: simulator on loopback -> collector -> nx-27017.

The simulator models a modify as the exchange does (cancel-and-replace: new oid, same cloid, the
old oid ends canceled), serves spot orders with the main dex and HIP-3 orders per dex, and adds a
dex while the collector runs. One scripted scenario per feed mode covers modifies with and
without a cloid (on a perp, a HIP-3 and a spot coin), a chain of modifies hidden in a reconnect
gap, modifies while the collector is down, and a new dex; the ground truth then confirms every
order and every link, with no duplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector_service.events.tracker import link
from collector_service.metrics import Stats
from collector_service.store import Database, final_op, link_op, order_ops
from exchange_sim import ExchangeSim, SimConfig, compare
from tests.collector.harness import RunningCollector, collector_settings, eventually

C1, C2, C3, C4 = ("0x" + f"{i:032x}" for i in (0xA1, 0xA2, 0xA3, 0xA4))


def event(db: Any, user: str, oid: int, key: str) -> dict[str, Any] | None:
    return db.trader_orders.find_one({"ethAddress": user, "oid": oid, "eventKey": key})


def linked(db: Any, user: str, old: int, new: int, match: str):
    """The old order closed as canceled pointing at the new one, which points back."""

    def check() -> bool:
        closed, placed = event(db, user, old, "closed"), event(db, user, new, "new")
        return (
            closed is not None and placed is not None
            and closed.get("finalStatus") == "canceled"
            and (closed.get("replacedByOid"), closed.get("replaceMatch")) == (new, match)
            and (placed.get("replacesOid"), placed.get("replaceMatch")) == (old, match)
        )

    return check


def has(db: Any, user: str, oid: int, key: str, final: str | None = None):
    def check() -> bool:
        doc = event(db, user, oid, key)
        return doc is not None and (final is None or doc.get("finalStatus") == final)

    return check


@pytest.mark.parametrize("feed", ["openOrders", "webData2"])
async def test_modifies_spot_and_hip3_against_ground_truth(feed: str, tmp_path: Path, mongo_uri: str,
                                                           mongo_db) -> None:
    truth = tmp_path / "truth.jsonl"
    db = mongo_db
    async with ExchangeSim(SimConfig(traders=3, push_interval=0.2, truth_file=truth)) as sim:
        alice, bob = sim.addresses[0], sim.addresses[1]
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "collector", [alice, bob],
                                      trader_ws_feed=feed, trader_dex_refresh_interval=5)
        perp = sim.place(alice, "BTC", "B", "0.5", "60000", cloid=C1)
        plain = sim.place(bob, "ETH", "A", "1", "4000")
        hip3 = sim.place(bob, "xyz:TSLA", "B", "2", "240", cloid=C2)
        spot = sim.place(alice, "PURR/USDC", "B", "1000", "0.18")
        gapped = sim.place(alice, "SOL", "A", "10", "250", cloid=C3)
        downed = sim.place(bob, "BTC", "A", "0.2", "90000", cloid=C4)
        downed_plain = sim.place(alice, "flx:OIL", "B", "5", "70")
        async with RunningCollector(settings) as run:
            for oid, user in ((perp, alice), (plain, bob), (hip3, bob), (spot, alice), (gapped, alice),
                              (downed, bob), (downed_plain, alice)):
                await eventually(has(db, user, oid, "new"), what=f"new {oid}")
            assert {event(db, bob, hip3, "new")["dex"], event(db, alice, downed_plain, "new")["dex"]} == {"xyz", "flx"}
            assert event(db, alice, spot, "new")["dex"] == ""

            # modifies while watched: with a cloid (perp, HIP-3), without one (inferred), and a
            # partial fill, which keeps the oid
            sim.fill(perp, "0.2")
            await eventually(has(db, alice, perp, "updated:1"), what="partial fill")
            perp2 = sim.amend(perp, limit_px="61000")
            plain2 = sim.amend(plain, sz="2")
            hip3_2 = sim.amend(hip3, limit_px="245")
            await eventually(linked(db, alice, perp, perp2, "cloid"), what="cloid modify")
            await eventually(linked(db, bob, plain, plain2, "inferred"), what="modify without cloid")
            await eventually(linked(db, bob, hip3, hip3_2, "cloid"), what="HIP-3 modify")
            assert event(db, alice, perp2, "new")["sz"] == "0.3"  # the remaining size, re-placed
            sim.fill(spot)
            sim.fill(hip3_2, "1")
            await eventually(has(db, alice, spot, "closed", "filled"), what="spot fill")

            # a chain of two modifies inside a reconnect gap: the snapshot after it shows the
            # first order gone and the third there; the order history names the middle one
            sim.refuse_connections(2.0)
            sim.drop_connections()
            gapped2 = sim.amend(gapped, limit_px="251")
            gapped3 = sim.amend(gapped2, limit_px="252")
            await eventually(linked(db, alice, gapped, gapped2, "cloid"), timeout=30, what="gap modify 1")
            await eventually(linked(db, alice, gapped2, gapped3, "cloid"), timeout=30, what="gap modify 2")
            assert event(db, alice, gapped2, "new")["source"] == "rest"

            # a dex deployed while running: followed after the next perpDexs check, and an order
            # that lived on it before that is recovered over REST
            sim.add_dex("newdx", {"ABC": "12.5"})
            early = sim.place(bob, "newdx:ABC", "B", "3", "12")
            sim.cancel(early)
            later = sim.place(bob, "newdx:ABC", "A", "3", "13", cloid="0x" + "ee" * 16)
            await eventually(has(db, bob, later, "new"), timeout=30, what="order on the new dex")
            await eventually(has(db, bob, early, "closed", "canceled"), timeout=30, what="recovered order")
            assert event(db, bob, later, "new")["dex"] == "newdx"
            later2 = sim.amend(later, sz="4")
            await eventually(linked(db, bob, later, later2, "cloid"), what="modify on the new dex")
            assert "newdx" in run.service.dexes.names

        # modifies while the collector is down, with and without a cloid
        downed2 = sim.amend(downed, limit_px="91000")
        downed_plain2 = sim.amend(downed_plain, limit_px="71")
        async with RunningCollector(settings):
            await eventually(linked(db, bob, downed, downed2, "cloid"), what="modify while down")
            await eventually(linked(db, alice, downed_plain, downed_plain2, "inferred"),
                             what="modify without cloid while down")

        # positions per dex: the latest stored document per (dex, coin) is the exchange's
        for user in (alice, bob):
            for dex in ("", "xyz"):
                served = {a["position"]["coin"]: a["position"]["szi"]
                          for a in sim.exchange.clearinghouse_state(user, dex=dex)["assetPositions"]}
                stored: dict[str, str] = {}
                for doc in db.trader_positions.find({"ethAddress": user, "dex": dex}).sort("serverTime", -1):
                    stored.setdefault(doc["coin"], doc["szi"])
                assert {c: szi for c, szi in stored.items() if szi != "0.0"} == served, (user, dex)
        assert db.trader_positions.find_one({"ethAddress": bob, "dex": "xyz", "coin": "xyz:TSLA", "szi": "1.0"})
        assert not db.trader_positions.find_one({"coin": "PURR/USDC"})  # spot makes no perp position

    report = compare(db.trader_orders, truth, users=[alice, bob])
    assert report.ok, report.summary()
    assert report.capture_rate == 1.0 and report.links_expected == report.links_right == 8, report.summary()
    assert report.link_matches == {"cloid": 6, "inferred": 2}


def test_outcomes_confirm_or_drop_links(mongo_uri: str, mongo_db) -> None:
    """The exchange's outcome of a replaced order is the check on a link: a replaced order ends
    canceled, and a replacement inferred without a cloid was placed when it was cancelled."""
    user, t0 = "0x" + "1" * 40, datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def pair(old: int, new: int, match: str, placed: datetime) -> list[dict[str, Any]]:
        closed = {"ethAddress": user, "oid": old, "eventKey": "closed", "action": "closed", "seq": 1,
                  "finalStatus": "unknown", "timestamp": t0, "observedAt": t0}
        fresh = {"ethAddress": user, "oid": new, "eventKey": "new", "action": "new", "seq": 0,
                 "timestamp": placed, "observedAt": t0}
        link(closed, fresh, old, new, match)
        return [closed, fresh]

    db = Database(mongo_uri, mongo_db.name)
    stats = Stats()
    db.ensure_indexes()
    cancel_ms = int((t0 + timedelta(seconds=5)).timestamp() * 1000)
    db.write(order_ops([*pair(1, 2, "inferred", t0 + timedelta(seconds=5)),  # placed at the cancel
                        *pair(3, 4, "inferred", t0 + timedelta(seconds=3)),  # placed 2 s before it
                        *pair(5, 6, "cloid", t0 + timedelta(seconds=30)),  # cloid: time not needed
                        *pair(7, 8, "cloid", t0 + timedelta(seconds=5))]), stats)
    db.write([final_op(user, 1, "canceled", cancel_ms), final_op(user, 3, "canceled", cancel_ms),
              final_op(user, 5, "canceled", cancel_ms), final_op(user, 7, "filled", cancel_ms)], stats)
    kept = {d["oid"]: (d.get("replacesOid"), d.get("replacedByOid"))
            for d in mongo_db.trader_orders.find({}, {"oid": 1, "replacesOid": 1, "replacedByOid": 1})}
    db.close()
    assert kept == {1: (None, 2), 2: (1, None), 3: (None, None), 4: (None, None), 5: (None, 6), 6: (5, None),
                    7: (None, None), 8: (None, None)}


def test_a_link_from_the_history_replaces_an_inferred_one_on_both_sides(mongo_uri: str, mongo_db) -> None:
    """Across a gap a snapshot showed A gone and C there (linked A -> C); the history says A -> B
    -> C: C no longer points at A, A points at B."""
    user, t0 = "0x" + "2" * 40, datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    events = []
    for oid in (1, 2, 3):
        for action in ("new", "closed") if oid < 3 else ("new",):
            events.append({"ethAddress": user, "oid": oid, "eventKey": action, "action": action, "seq": 0,
                           "timestamp": t0, "observedAt": t0})
    closed_a, new_c = events[1], events[4]
    link(closed_a, new_c, 1, 3, "cloid")
    db = Database(mongo_uri, mongo_db.name)
    db.ensure_indexes()
    db.write(order_ops(events), Stats())
    db.write([link_op(user, 1, 2, "cloid"), link_op(user, 2, 3, "cloid")], Stats())
    got = {(d["oid"], d["eventKey"]): (d.get("replacesOid"), d.get("replacedByOid"))
           for d in mongo_db.trader_orders.find({}, {"oid": 1, "eventKey": 1, "replacesOid": 1, "replacedByOid": 1})}
    db.close()
    assert got == {(1, "new"): (None, None), (1, "closed"): (None, 2), (2, "new"): (1, None),
                   (2, "closed"): (None, 3), (3, "new"): (2, None)}
