"""The leaderboard group materialized for real against the simulator's 30k-row document."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from pymongo.database import Database

from exchange_sim import ExchangeSim, SimConfig
from orderwatch_dagster.leaderboard import LeaderboardError
from orderwatch_dagster.leaderboard_assets import (
    FIRST_SNAPSHOT_RUN_KEY,
    leaderboard_assets,
    leaderboard_checks,
    leaderboard_first_snapshot_sensor,
)
from orderwatch_dagster.resources import LeaderboardSource, MongoResource, ParquetStore


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSim]:
    """A simulator with 500 traders and a 30k-row leaderboard, served from its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> ExchangeSim:  # built in the loop's thread: its recorder's sqlite lives there
        return await ExchangeSim(SimConfig(traders=500, leaderboard_rows=30_000, orders_per_trader_per_min=0)).start()

    s = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    yield s
    asyncio.run_coroutine_threadsafe(s.stop(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def run(resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*leaderboard_assets, *leaderboard_checks],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def failure(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.step_failure_data.error.message if event.step_failure_data.error else ""


def test_snapshots_selection_history_and_bad_documents(sim: ExchangeSim, tmp_path: Path, mongo_uri: str,
                                                       mongo_db: Database) -> None:
    store = ParquetStore(data_dir=str(tmp_path / "data"))
    resources = {"store": store, "leaderboard_source": LeaderboardSource(url=sim.leaderboard_url),
                 "mongo_db": MongoResource(uri=mongo_uri, database=mongo_db.name)}
    manual = sim.addresses[0]  # on a collector's watch-list file: its manual entry stays manual
    mongo_db.trader_watchlist.insert_one({"_id": manual, "ethAddress": manual, "label": "mine", "tags": [],
                                          "origin": "manual", "watching": True})
    stale = "0x" + "ee" * 20  # selected by an earlier run, no longer listed
    mongo_db.trader_watchlist.insert_one({"_id": stale, "ethAddress": stale, "label": None, "tags": [],
                                          "origin": "selection", "watching": True})
    first = run(resources)
    assert first.success
    (snap,) = store.snapshots("leaderboard")
    assert Path(snap).parent.name.startswith("date=") and Path(snap).name.startswith("leaderboard-")
    board = pl.read_parquet(snap)
    assert board.height == 30_000 and board["ethAddress"].n_unique() == 30_000
    (decided,) = store.snapshots("trader_selection")
    sel = pl.read_parquet(decided)
    # The default rules list exactly the 500 traders the simulator trades for.
    assert set(sel.filter(pl.col("decision") == "selected")["ethAddress"]) == set(sim.addresses)
    meta = first.asset_materializations_for_node("trader_selection")[0].metadata
    assert meta["listed"].value == 500 and meta["selected"].value == 500
    # What following the list will mean with the default [coverage] (one address, 300 s wanted):
    # 10 live, 490 polled, each every 490 x 20.5 / 720 min = 837 s: shown, and a warning check.
    assert (meta["coverage_live"].value, meta["coverage_polled_per_address"].value) == (10, 490)
    assert (meta["coverage_expected_period_s"].value, meta["coverage_fresh"].value) == (837.1, False)
    assert meta["coverage"].value == ("500 traders: 10 live, 490 polled (490 per address, each refreshed every "
                                      "~837 s); slower than max_poll_period_s = 300 s: add addresses or instances, "
                                      "a node, or list fewer traders")
    (fresh,) = [c for c in first.get_asset_check_evaluations() if c.check_name == "trader_selection_fresh_enough"]
    assert not fresh.passed and fresh.severity == dg.AssetCheckSeverity.WARN
    assert fresh.description == meta["coverage"].value and fresh.metadata["expected_period_s"].value == 837.1

    # The list is written where the collectors read it: one document per address, Dagster's own
    # origins only; the manual entry untouched, the stale selection gone.
    docs = {d["_id"]: d for d in mongo_db.trader_watchlist.find()}
    assert set(docs) == set(sim.addresses)
    assert (docs[manual]["origin"], docs[manual]["label"]) == ("manual", "mine")
    chosen = sel.filter(pl.col("ethAddress") == sim.addresses[1]).row(0, named=True)
    doc = docs[sim.addresses[1]]
    assert (doc["ethAddress"], doc["origin"], doc["watching"]) == (sim.addresses[1], "selection", True)
    assert (doc["label"], doc["tags"]) == (chosen["label"], chosen["tags"]) and len(doc["tags"]) == 2
    assert first.asset_materializations_for_node("trader_watchlist")[0].metadata["manual"].value == 1

    sim.leaderboard.step()
    rules = tmp_path / "rules.toml"  # the reference deployment: five addresses, 50 live, 450 polled every 154 s
    rules.write_text("[coverage]\naddresses = 5\nmax_poll_period_s = 180.0\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ORDERWATCH_SELECTION_RULES", str(rules))
        second = run(resources)
    assert second.success
    (fresh,) = [c for c in second.get_asset_check_evaluations() if c.check_name == "trader_selection_fresh_enough"]
    assert fresh.passed
    assert fresh.description == "500 traders: 50 live, 450 polled (90 per address, each refreshed every ~154 s)"
    assert len(store.snapshots("leaderboard")) == 2 and len(store.snapshots("trader_selection")) == 2

    # A truncated download: a clear failure, nothing written, the previous snapshot stays newest.
    sim.leaderboard.truncate_next()
    cut = run(resources)
    assert not cut.success
    assert "leaderboard snapshot rejected, the previous one stays: not valid JSON" in failure(cut)
    assert len(store.snapshots("leaderboard")) == 2

    # A valid but much smaller document: stored and flagged; the selection refuses to halve the list.
    sim.leaderboard.limit_next(200)
    small = run(resources)
    assert not small.success
    (check,) = [c for c in small.get_asset_check_evaluations() if c.check_name == "leaderboard_not_much_smaller"]
    assert not check.passed and "200 rows, the previous snapshot had 30000" in (check.description or "")
    assert len(store.snapshots("leaderboard")) == 3 and len(store.snapshots("trader_selection")) == 2
    assert re.search(r"selection refused: the new list would have \d+ traders, the current one has 500", failure(small))
    assert mongo_db.trader_watchlist.count_documents({"origin": "selection"}) == 499  # the list in force stays


def test_http_errors_and_time_outs_are_clear(sim: ExchangeSim) -> None:
    with pytest.raises(LeaderboardError, match=r"GET http://.*/nope: HTTP 404 Not Found"):
        LeaderboardSource(url=sim.leaderboard_url + "/nope").fetch()
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/Mainnet/leaderboard"
        with pytest.raises(LeaderboardError, match=f"GET {url}: .*timed out"):
            LeaderboardSource(url=url, timeout_s=0.5).fetch()


def test_the_first_snapshot_is_requested_at_once_then_left_to_the_schedule(tmp_path: Path) -> None:
    store = ParquetStore(data_dir=str(tmp_path / "data"))
    request = leaderboard_first_snapshot_sensor(store=store)
    assert isinstance(request, dg.RunRequest) and request.run_key == FIRST_SNAPSHOT_RUN_KEY
    store.write_snapshot("leaderboard", datetime.now(UTC), pl.DataFrame({"ethAddress": ["0x" + "ab" * 20]}))
    skip = leaderboard_first_snapshot_sensor(store=store)
    assert isinstance(skip, dg.SkipReason) and "leaderboard_schedule" in (skip.skip_message or "")
