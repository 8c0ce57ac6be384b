"""A watch list that changes while the collector runs: simulator -> collector -> nx-27017.

Traders are added to and removed from ``TRADER_ADDRESSES_FILE`` without a restart. An added trader
is followed within seconds with its history (an order placed and cancelled before it was added is
recorded, and its fills); a removed one is unsubscribed; labels and tags are stored; a file that
does not parse changes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from collector_service.config import Trader, parse_watch_line
from collector_service.store import Database, watch_ops
from collector_service.watchlist import listed_trader, union
from exchange_sim import ExchangeSim, SimConfig
from orderwatch_dagster.mongo import write_listed
from tests.collector.harness import RunningCollector, collector_settings, eventually


def watching(sim: ExchangeSim, mongo_uri: str, db_name: str, tmp_path: Path, listing: Path) -> Any:
    """Collector settings following the traders of the watch-list file ``listing`` (checked every 0.2 s)."""
    return collector_settings(sim, mongo_uri, db_name, tmp_path / "c", [], trader_addresses="",
                              trader_addresses_file=listing, trader_watch_interval=0.2)


def test_watch_lines() -> None:
    a = "0x" + "ab" * 20
    t = parse_watch_line(f"  {a.upper().replace('0X', '0x')}  Desk A fund  [mm, whale,mm]  # note", "f:1")
    assert t is not None and (t.address, t.label, t.tags) == (a, "Desk A fund", ("mm", "whale"))
    assert parse_watch_line(f"{a}", "f:2") == parse_watch_line(f"{a}   # only a comment", "f:2")
    assert parse_watch_line("   # nothing", "f:3") is None
    with pytest.raises(ValueError, match="f:4"):
        parse_watch_line("0x123 label", "f:4")


async def test_traders_added_and_removed_while_running(tmp_path: Path, mongo_uri: str, mongo_db,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    db = mongo_db
    listing = tmp_path / "traders.txt"
    async with ExchangeSim(SimConfig(traders=3, push_interval=0.2)) as sim:
        alice, bob, carol = sim.addresses
        listing.write_text(f"{alice}  Alice desk  [mm]\n")
        settings = watching(sim, mongo_uri, db.name, tmp_path, listing)
        before = sim.place(bob, "BTC", "B", "0.1", "50000")
        sim.cancel(before)  # bob's history before he is added
        filled = sim.place(bob, "ETH", "A", "1", "2500")
        sim.fill(filled)
        async with RunningCollector(settings) as run:
            kept = sim.place(alice, "SOL", "B", "1", "150")
            await eventually(lambda: db.trader_orders.find_one({"oid": kept}), what="alice followed")
            await eventually(lambda: db.trader_watchlist.find_one({"_id": alice, "label": "Alice desk"}),
                             what="alice's label stored")

            listing.write_text(f"{alice}  Alice desk  [mm]\n{bob}  Bob  [whale, copy]\n")
            await eventually(lambda: sim.subscribers(bob) == 1, what="bob subscribed")
            later = sim.place(bob, "BTC", "A", "0.2", "80000")
            await eventually(lambda: db.trader_orders.find_one({"oid": later, "eventKey": "new"}), what="bob live")
            await eventually(lambda: db.trader_orders.find_one({"oid": before, "eventKey": "closed",
                                                                "finalStatus": "canceled"}),
                             what="bob's history before he was added")
            await eventually(lambda: db.trader_fills.find_one({"ethAddress": bob, "oid": filled}), what="bob's fill")
            doc = db.trader_watchlist.find_one({"_id": bob})
            assert (doc["label"], doc["tags"], doc["watching"]) == ("Bob", ["whale", "copy"], True)

            listing.write_text(f"{bob}  Bob  [whale, copy]\n")
            await eventually(lambda: sim.subscribers(alice) == 0, what="alice let go")
            await eventually(lambda: db.trader_watchlist.find_one({"_id": alice, "watching": False}),
                             what="alice marked as no longer watched")
            assert alice not in run.service.users and bob in run.service.users

            with caplog.at_level(logging.ERROR):
                listing.write_text(f"{bob}\n{carol[:-2]}\n")  # a bad address: nothing changes
                await eventually(lambda: any("event=watchlist_invalid" in r.getMessage() for r in caplog.records),
                                 what="the bad file reported")
            assert run.service.users == [bob] and sim.subscribers(bob) == 1


async def test_a_trader_removed_and_added_back_keeps_its_open_orders(tmp_path: Path, mongo_uri: str,
                                                                     mongo_db) -> None:
    # Removed, its books were dropped; added back, its open orders restarted at seq 0, so their
    # next changes got keys already stored (duplicates) and never moved trader_open_orders.
    db = mongo_db
    listing = tmp_path / "traders.txt"
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
        alice, bob = sim.addresses
        listing.write_text(f"{alice}\n{bob}\n")
        settings = watching(sim, mongo_uri, db.name, tmp_path, listing)
        async with RunningCollector(settings) as run:
            resting = sim.place(alice, "BTC", "B", "1.0", "50000")
            closing = sim.place(alice, "ETH", "B", "1.0", "2000")
            await eventually(lambda: db.trader_open_orders.count_documents({"ethAddress": alice}) == 2,
                             what="alice's orders open")
            sim.fill(resting, "0.2")
            await eventually(lambda: db.trader_orders.find_one({"oid": resting, "eventKey": "updated:1"}),
                             what="1.0 -> 0.8 stored")

            listing.write_text(f"{bob}\n")
            await eventually(lambda: sim.subscribers(alice) == 0, what="alice let go")
            sim.fill(resting, "0.3")  # unseen: 0.8 -> 0.5
            sim.cancel(closing)  # closes while nobody watches
            hidden = sim.place(alice, "SOL", "B", "1", "150")
            sim.cancel(hidden)  # placed and cancelled while nobody watches

            listing.write_text(f"{alice}\n{bob}\n")
            await eventually(lambda: sim.subscribers(alice) == 1, what="alice followed again")
            await eventually(lambda: (db.trader_open_orders.find_one({"oid": resting}) or {}).get("sz") == "0.5",
                             what="the row at the exchange's 0.5")
            sim.fill(resting, "0.1")
            await eventually(lambda: (db.trader_open_orders.find_one({"oid": resting}) or {}).get("sz") == "0.4",
                             what="the row at 0.4")
            await eventually(lambda: db.trader_orders.find_one({"oid": closing, "eventKey": "closed",
                                                                "finalStatus": "canceled"}),
                             what="the order closed while unwatched")
            await eventually(lambda: db.trader_orders.find_one({"oid": hidden, "eventKey": "closed",
                                                                "finalStatus": "canceled"}),
                             what="the order placed and cancelled while unwatched")
            assert [d["sz"] for d in db.trader_orders.find({"oid": resting}).sort("seq", 1)] == \
                ["1.0", "0.8", "0.5", "0.4"]
            assert run.service.stats.events_duplicate == 0


async def test_a_change_made_while_the_service_starts_is_not_missed(tmp_path: Path, mongo_uri: str,
                                                                    mongo_db) -> None:
    # the watcher took the file's stamp only once the stored state was loaded: a trader listed
    # in between was never followed (until some later change of the file)
    listing = tmp_path / "traders.txt"
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
        alice, bob = sim.addresses
        listing.write_text(f"{alice}\n")
        settings = watching(sim, mongo_uri, mongo_db.name, tmp_path, listing)
        starting = RunningCollector(settings)  # the list is read
        listing.write_text(f"{alice}\n{bob}\n")
        async with starting as run:
            await eventually(lambda: sim.subscribers(bob) == 1, what="bob followed")
            assert sorted(run.service.users) == sorted([alice, bob])


def test_the_selection_joins_the_manual_list() -> None:
    a, b, c, d = ("0x" + x * 40 for x in "abcd")
    manual = [Trader(a, "mine", ("desk",))]
    listed = [listed_trader({"_id": c, "ethAddress": c, "label": "C", "tags": ["Whale"], "origin": "selection"}),
              listed_trader({"_id": a, "ethAddress": a, "label": "leader", "tags": [], "origin": "selection"}),
              listed_trader({"_id": b, "ethAddress": b.upper().replace("0X", "0x"), "origin": "pin"})]
    assert union(manual, listed) == [Trader(a, "mine", ("desk",)), Trader(b, None, (), "pin"),
                                     Trader(c, "C", ("Whale",), "selection")]
    for doc, problem in [({"_id": d, "ethAddress": d[:-1], "origin": "selection"}, "not a trader address"),
                         ({"_id": d, "ethAddress": d, "origin": "manual"}, "origin 'manual' is not one of"),
                         ({"_id": d, "ethAddress": d, "origin": "pin", "tags": "Whale"}, "not a list of strings"),
                         ({"_id": d, "ethAddress": d, "origin": "pin", "label": 7}, "label 7 is not a string")]:
        with pytest.raises(ValueError, match=f"trader_watchlist document '{d}'.*{problem}"):
            listed_trader(doc)


def test_the_collector_and_dagster_never_clobber_each_others_documents(mongo_uri: str, mongo_db) -> None:
    a, b, c = ("0x" + x * 40 for x in "abc")
    database = Database(mongo_uri, mongo_db.name)
    try:
        write_listed(mongo_db, pl.DataFrame({"ethAddress": [b, c], "decision": ["selected", "pinned"],
                                             "label": ["B", None], "tags": [["Whale"], []]}))
        database._watch([op["doc"] for op in watch_ops([Trader(a, "mine"), Trader(b, "manual B")], watching=True)])
        # not on the file: c stays pinned (the upsert meets Dagster's document, a duplicate key)
        database._watch([op["doc"] for op in watch_ops([Trader(c, "was manual")], watching=False)])
        assert {d["_id"]: (d["origin"], d["label"]) for d in mongo_db.trader_watchlist.find()} == {
            a: ("manual", "mine"), b: ("manual", "manual B"), c: ("pin", None)}
        assert [d["_id"] for d in database.listed()] == [c]
        # Dagster leaves manual entries alone and drops what it no longer lists
        assert write_listed(mongo_db, pl.DataFrame({"ethAddress": [a], "decision": ["selected"], "label": ["A"],
                                                    "tags": [[]]})) == {"written": 0, "manual": 1, "deleted": 1}
        # b left the file (after a last rename in the same batch: its entries apply in order)
        database._watch([op["doc"] for op in [*watch_ops([Trader(b, "manual B2")], watching=True),
                                              *watch_ops([Trader(b, "manual B")], watching=False)]])
        write_listed(mongo_db, pl.DataFrame({"ethAddress": [a, b], "decision": ["selected", "selected"],
                                             "label": ["A", "B"], "tags": [[], []]}))
        assert {d["_id"]: (d["origin"], d["label"]) for d in mongo_db.trader_watchlist.find()} == {
            a: ("manual", "mine"), b: ("selection", "B")}
    finally:
        database.close()


async def test_the_collector_follows_the_selection_in_mongodb(tmp_path: Path, mongo_uri: str, mongo_db,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    db = mongo_db
    listing = tmp_path / "traders.txt"
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
        alice, bob = sim.addresses
        listing.write_text(f"{alice}  Alice\n")
        settings = watching(sim, mongo_uri, db.name, tmp_path, listing).model_copy(
            update={"trader_watchlist_selection": True})
        before = sim.place(bob, "BTC", "B", "0.1", "50000")
        sim.cancel(before)  # bob's history before he is selected
        async with RunningCollector(settings) as run:
            await eventually(lambda: sim.subscribers(alice) == 1, what="alice followed")
            # as the trader_watchlist asset writes it
            write_listed(db, pl.DataFrame({"ethAddress": [bob], "decision": ["selected"], "label": ["Bob"],
                                           "tags": [["Whale"]]}))
            await eventually(lambda: sim.subscribers(bob) == 1, what="bob followed")
            later = sim.place(bob, "ETH", "A", "1", "2500")
            await eventually(lambda: db.trader_orders.find_one({"oid": later, "eventKey": "new"}), what="bob live")
            await eventually(lambda: db.trader_orders.find_one({"oid": before, "eventKey": "closed",
                                                                "finalStatus": "canceled"}),
                             what="bob's history before he was selected")
            assert (db.trader_watchlist.find_one({"_id": bob}) or {}).get("origin") == "selection"
            assert run.service.health()["watchlist_selection"] == {"read_ok": True, "listed": 1}

            write_listed(db, pl.DataFrame(schema={"ethAddress": pl.String, "decision": pl.String,
                                                  "label": pl.String, "tags": pl.List(pl.String)}))
            await eventually(lambda: sim.subscribers(bob) == 0, what="bob let go")
            assert run.service.users == [alice]
            assert db.trader_watchlist.find_one({"_id": bob}) is None  # the collector wrote nothing of bob's

            write_listed(db, pl.DataFrame({"ethAddress": [bob], "decision": ["pinned"], "label": [None],
                                           "tags": [[]]}))
            await eventually(lambda: sim.subscribers(bob) == 1, what="bob followed again")
            with caplog.at_level(logging.ERROR):
                run.service.database.client.close()  # every read fails from now on
                await eventually(lambda: any("event=watchlist_selection_unavailable" in r.getMessage()
                                             for r in caplog.records), what="the failed read reported")
            assert sorted(run.service.users) == sorted([alice, bob]) and sim.subscribers(bob) == 1
            assert run.service.health()["watchlist_selection"]["read_ok"] is False
