"""The scorecards on a hand-built week (``scenario/week``), materialized day by day against
nx-27017: every figure below is worked out by hand from the scenario's documents."""

from __future__ import annotations

import json
import shutil
import statistics
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pymongo
import pytest

from collector_service import schema
from orderwatch_dagster import assets, checks, tables
from orderwatch_dagster.resources import MongoResource, ParquetStore
from orderwatch_dagster.transforms import scorecards
from orderwatch_dagster.transforms.positions import RAW_POSITION_SCHEMA, positions_snapshot
from tests.conftest import FIXTURES
from tests.dagster.conftest import create_indexes
from tests.dagster.scenario import at
from tests.dagster.scenario import week as wk

BUILT = [
    assets.order_events,
    assets.fills,
    assets.order_lifecycles,
    assets.positions_snapshot,
    assets.trader_account_days,
    assets.trader_scorecards,
]
END = at(wk.W8, "00:00:00") + timedelta(days=1)

# P's daily returns: each day's last main-dex account value over the day before's.
P_RETURNS = [1200 / 1000 - 1, 1150 / 1200 - 1, 1170 / 1150 - 1, 1161 / 1170 - 1, 0.0, 1200 / 1161 - 1, 1260 / 1200 - 1]
NO_TRIPS = {"roundTrips": 0, "wins": 0, "winRate": None, "profitFactor": None, "avgHoldS": None, "medianHoldS": None}
NO_ORDERS = {"ordersPlaced": 0, "cancelRatio": None, "modifyRate": None, "medianTimeToFirstFillS": None,
             "medianDistanceBps": None}  # fmt: skip
NO_ACCOUNT = {"accountValue": None, "maxDrawdown": None, "returnVolatility": None, "leverageAvg": None,
              "leverageMax": None}  # fmt: skip
FLAT = {"unrealizedPnl": 0.0, "unrealizedAsOf": None, "openPositions": 0}

P_OPEN = {"unrealizedPnl": 2 * (104.5 - 100), "unrealizedAsOf": at(wk.W8, "20:00:00"), "openPositions": 1}
# Round trips closed from 11-02 on: 11-01 10:00 -> 11-03 09:00 (+15 - 5), the flip's short -> 11-04 15:00
# (+20), 11-05 10:00 -> 11:00 (-9).
P_TRIPS = {"roundTrips": 3, "wins": 2, "winRate": 2 / 3, "profitFactor": 30 / 9,
           "avgHoldS": (47 * 3600 + 30 * 3600 + 3600) / 3, "medianHoldS": 30 * 3600}  # fmt: skip
# End-of-day positions: 11-01 lev 10 / $220, 11-02 lev 10 / $120, 11-03 lev 20 / $200, 11-06..08 lev 3 / $200.
P_SINCE_FIRST = {
    "fills": 8, "volumeUsd": 1199.0, "realizedPnl": 21.0, "fees": 11.49, "makerShare": 420 / 1199, **P_TRIPS,
    "ordersPlaced": 7, "cancelRatio": 2 / 7, "modifyRate": 1 / 7, "medianTimeToFirstFillS": 3600.0,
    "medianDistanceBps": 10.0, "accountValue": 1260.0, "maxDrawdown": 0.2,
    "returnVolatility": statistics.stdev(P_RETURNS), "leverageAvg": 9200 / 1140, "leverageMax": 20, **P_OPEN,
}  # fmt: skip
Q_TRIPS = {"roundTrips": 2, "wins": 2, "winRate": 1.0, "profitFactor": None, "avgHoldS": 45000.0,
           "medianHoldS": 45000.0}  # fmt: skip
Q_SINCE_FIRST = {"fills": 4, "volumeUsd": 335.0, "realizedPnl": 25.0, "fees": 0.335, "makerShare": 115 / 335,
                 **Q_TRIPS, **NO_ORDERS, **NO_ACCOUNT, **FLAT}  # fmt: skip
R_ORDERS = {"ordersPlaced": 1, "cancelRatio": 0.0, "modifyRate": 0.0, "medianTimeToFirstFillS": 1800.0,
            "medianDistanceBps": 12.0}  # fmt: skip
R_7D = {"fills": 2, "volumeUsd": 305.0, "realizedPnl": 4.0, "fees": 0.3, "makerShare": 200 / 305, **NO_TRIPS,
        **R_ORDERS, **NO_ACCOUNT, **FLAT}  # fmt: skip
NOTHING = {"fills": 0, "volumeUsd": 0.0, "realizedPnl": 0.0, "fees": 0.0, "makerShare": None}

P_SINCE = at(wk.W1, "09:00:00")
Q_SINCE = at(wk.W1, "06:00:00")
R_SINCE = at(wk.W6, "14:00:00")
EXPECTED = {
    (wk.P, "1d"): (False, {
        **NOTHING, **NO_TRIPS, "ordersPlaced": 1, "cancelRatio": 1.0, "modifyRate": 0.0,
        "medianTimeToFirstFillS": None, "medianDistanceBps": 30.0, "accountValue": 1260.0, "maxDrawdown": 0.0,
        "returnVolatility": None, "leverageAvg": 3.0, "leverageMax": 3, **P_OPEN,
    }),
    (wk.P, "7d"): (False, {
        "fills": 6, "volumeUsd": 989.0, "realizedPnl": 21.0, "fees": 9.89, "makerShare": 320 / 989, **P_TRIPS,
        "ordersPlaced": 5, "cancelRatio": 0.4, "modifyRate": 0.2, "medianTimeToFirstFillS": 1800.0,
        "medianDistanceBps": 20.0, "accountValue": 1260.0, "maxDrawdown": 0.15,
        "returnVolatility": statistics.stdev(P_RETURNS), "leverageAvg": 7000 / 920, "leverageMax": 20, **P_OPEN,
    }),
    (wk.P, "30d"): (True, P_SINCE_FIRST),
    (wk.P, "followed"): (False, P_SINCE_FIRST),
    (wk.Q, "1d"): (False, {**NOTHING, **NO_TRIPS, **NO_ORDERS, **NO_ACCOUNT, **FLAT}),
    (wk.Q, "7d"): (False, {"fills": 3, "volumeUsd": 235.0, "realizedPnl": 25.0, "fees": 0.235,
                           "makerShare": 115 / 235, **Q_TRIPS, **NO_ORDERS, **NO_ACCOUNT, **FLAT}),
    (wk.Q, "30d"): (True, Q_SINCE_FIRST),
    (wk.Q, "followed"): (False, Q_SINCE_FIRST),
    (wk.R, "1d"): (False, {**NOTHING, **NO_TRIPS, **NO_ORDERS, **NO_ACCOUNT, **FLAT}),
    (wk.R, "7d"): (True, R_7D),
    (wk.R, "30d"): (True, R_7D),
    # Since followed: the fill recovered from before following (+4) is left out.
    (wk.R, "followed"): (False, {**R_7D, "fills": 1, "volumeUsd": 200.0, "realizedPnl": 0.0, "fees": 0.2,
                                 "makerShare": 1.0}),
}  # fmt: skip
SINCE = {wk.P: P_SINCE, wk.Q: Q_SINCE, wk.R: R_SINCE}
STARTS = {"1d": END - timedelta(days=1), "7d": END - timedelta(days=7), "30d": END - timedelta(days=30)}
LABELS = {wk.P: ("Pat", ["btc"]), wk.Q: ("Quitter", []), wk.R: ("Rookie", [])}


@pytest.fixture(scope="module")
def built(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The week's documents in a database of their own, every day built once for the module's tests."""
    name = f"ow_test_{uuid.uuid4().hex[:12]}"
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    db = client[name]
    create_indexes(db)
    for coll, docs in ((schema.ORDERS, wk.orders()), (schema.FILLS, wk.fills()), (schema.POSITIONS, wk.positions()),
                       (schema.ACCOUNTS, wk.accounts()), (schema.MARKS, wk.marks()),
                       (schema.WATCHLIST, wk.watchlist())):  # fmt: skip
        db[coll].insert_many(docs)
    parquet = ParquetStore(data_dir=str(tmp_path_factory.mktemp("week") / "data"))
    resources = {"mongo_db": MongoResource(uri=mongo_uri, database=name), "store": parquet}
    try:
        for day in wk.DAYS:
            # entered: the instance is the current definitions-state storage while it builds (a
            # storage left current by an earlier test's instance may be gone)
            with dg.DagsterInstance.ephemeral() as instance:
                assert dg.materialize(BUILT, partition_key=day, resources=resources, instance=instance).success, day
        yield resources
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def store(built: dict) -> ParquetStore:
    return built["store"]  # type: ignore[no-any-return]


def _close(actual: object, expected: object) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, float):
        return float(actual) == pytest.approx(expected, rel=1e-9, abs=1e-9)  # type: ignore[arg-type]
    return actual == expected


def test_a_week_of_scorecards_matches_the_hand_worked_figures(store: ParquetStore) -> None:
    cards = store.read("trader_scorecards", wk.W8)
    assert cards.schema == tables.schema(tables.TRADER_SCORECARDS)
    got = {(r["ethAddress"], r["window"]): r for r in cards.iter_rows(named=True)}
    assert set(got) == set(EXPECTED)
    for key, (partial, figures) in EXPECTED.items():
        row = got[key]
        address, window = key
        assert row["followedSince"] == SINCE[address], key
        assert row["windowStart"] == (SINCE[address] if window == "followed" else STARTS[window]), key
        assert row["windowEnd"] == END
        assert row["partial"] is partial, key
        assert (row["label"], row["tags"]) == LABELS[address], key
        wrong = {c: (row[c], v) for c, v in figures.items() if not _close(row[c], v)}
        assert not wrong, (key, wrong)
    # Every column is covered by the hand-worked figures or the checks above.
    assert set(cards.columns) == set(EXPECTED[(wk.P, "7d")][1]) | {
        "ethAddress", "window", "windowStart", "windowEnd", "followedSince", "partial", "label", "tags",
    }  # fmt: skip


def test_the_account_days_keep_each_dex_apart(store: ParquetStore) -> None:
    first = store.read("trader_account_days", wk.W1)
    assert first.select("ethAddress", "dex", "samples", "openValue", "highValue", "lowValue", "closeValue").rows() == [
        (wk.P, "", 3, 1000.0, 1250.0, 1000.0, 1000.0)
    ]
    assert first["maxDrawdown"].to_list() == [pytest.approx(1 - 1000 / 1250)]
    last = store.read("trader_account_days", wk.W8).sort("dex")
    assert last.select("dex", "closeValue").rows() == [("", 1260.0), ("xyz", 500.0)]
    assert last["firstAt"].to_list() == [at(wk.W8, "12:00:00")] * 2


def _unrealized_of_p(cards: pl.DataFrame) -> set[tuple[float, object, int]]:
    return set(cards.filter(pl.col("ethAddress") == wk.P).select("unrealizedPnl", "unrealizedAsOf", "openPositions")
               .rows())  # fmt: skip


def test_a_day_built_after_its_end_values_positions_at_its_last_account_sample(
    built: dict, store: ParquetStore, mongo_db: pymongo.database.Database, tmp_path: Path
) -> None:
    """Built after midnight, every mark in ``market_marks`` is newer than the day: P's open long is
    valued at the day's last account sample (closeValue - closeRawUsd - szi x entryPx), as of that
    sample, not at the position's own figure as of its last change (0.0 in the scenario)."""
    for day in wk.DAYS[:-1]:  # the only mark of BTC is from W8 20:00
        last = at(day, wk.ACCOUNT_VALUES[day][-1][0])
        expected = (wk.UNREALIZED_AT_LAST_SAMPLE[day], last, 1) if day in wk.UNREALIZED_AT_LAST_SAMPLE else (
            0.0, None, 0)
        assert _unrealized_of_p(store.read("trader_scorecards", day)) == {expected}, day
    # W8 was built while its mark was fresh and newer than its 12:00 sample (9.0 as of 20:00, see
    # P_OPEN); rebuilt after midnight, it is the 12:00 sample's +6.
    mongo_db[schema.MARKS].insert_many([m | {"at": END + timedelta(minutes=5)} for m in wk.marks()])
    mongo_db[schema.WATCHLIST].insert_many(wk.watchlist())
    shutil.copytree(store.data_dir, tmp_path / "data")  # the module's W8 stays as built
    later = ParquetStore(data_dir=str(tmp_path / "data"))
    resources = {"mongo_db": MongoResource(uri=built["mongo_db"].uri, database=mongo_db.name), "store": later}
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([assets.trader_scorecards], partition_key=wk.W8, resources=resources,
                              instance=instance).success  # fmt: skip
    assert _unrealized_of_p(later.read("trader_scorecards", wk.W8)) == {(6.0, at(wk.W8, "12:00:00"), 1)}


@pytest.mark.parametrize(("margin", "expected"), [("cross", 0.99324), ("isolated", -5.0)])
def test_the_last_sample_values_positions_as_the_real_clearinghouse_state_does(margin: str, expected: float) -> None:
    """The real clearinghouseState sample (tests/fixtures): its accountValue - totalRawUsd - szi x
    entryPx is its cross BTC long's unrealizedPnl (0.99324), where the position was last recorded an
    hour before at -5.0. An isolated position keeps its last recorded figure (not verified there)."""
    state = json.loads((FIXTURES / "hyperliquid" / "clearinghouseState_rest_response.json").read_text())
    served = datetime.fromtimestamp(state["time"] / 1000, UTC)
    summary, held = state["marginSummary"], state["assetPositions"][0]["position"]
    sample = {"ethAddress": wk.P, "dex": "", **summary, "serverTime": served}
    accounts = pl.DataFrame([sample], schema=scorecards.RAW_ACCOUNT_SCHEMA)
    changed = served - timedelta(hours=1)
    doc = {**held, "ethAddress": wk.P, "unrealizedPnl": "-5.0", "leverageType": margin, "leverage": 1,
           "serverTime": changed, "observedAt": changed}  # fmt: skip
    positions = positions_snapshot(pl.DataFrame([doc], schema=RAW_POSITION_SCHEMA), served.date())
    cards = scorecards.trader_scorecards(
        served.date(),
        fills=pl.LazyFrame(schema=tables.schema(tables.FILLS)),
        lifecycles=pl.LazyFrame(schema=tables.schema(tables.ORDER_LIFECYCLES)).with_columns(partitionDay=served.date()),
        positions=positions.lazy().with_columns(partitionDay=served.date()),
        account_days=scorecards.trader_account_days(accounts, served.date()).lazy(),
        marks=pl.DataFrame(schema=scorecards.MARKS_SCHEMA),
    )
    as_of = served if margin == "cross" else changed
    assert cards.select("unrealizedPnl", "unrealizedAsOf", "openPositions").rows() == [
        (pytest.approx(expected, abs=1e-9), as_of, 1)
    ] * len(tables.SCORECARD_WINDOWS)


def test_a_dropped_trader_keeps_its_rows_every_day(store: ParquetStore) -> None:
    # Q's last fill is on 11-03 and it left the list on 11-04: it is in every day's scorecards after.
    for day in wk.DAYS:
        cards = store.read("trader_scorecards", day)
        assert cards.filter(pl.col("ethAddress") == wk.Q).height == len(tables.SCORECARD_WINDOWS), day


def _leaderboard(rows: dict[str, tuple[str | None, str | None, str | None]]) -> pl.DataFrame:
    """A leaderboard snapshot at 11-08 23:00 with only the addresses and their day / week / month PnL."""
    given = {
        "snapshotAt": [at(wk.W8, "23:00:00")] * len(rows),
        "ethAddress": list(rows),
        **{f: [r[i] for r in rows.values()] for i, f in enumerate(("dayPnl", "weekPnl", "monthPnl"))},
    }
    frame = pl.DataFrame(given).with_columns(
        [pl.lit(None).alias(c.name) for c in tables.LEADERBOARD if c.name not in given]
    )
    return tables.conform(frame, tables.LEADERBOARD).collect()


def test_realized_pnl_is_compared_with_the_leaderboard(built: dict, store: ParquetStore) -> None:
    board = _leaderboard({
        wk.P: ("9.0", "1021.0", "5000.0"),  # 1d: ours 0 (within $100); 7d: ours 21; 30d: only partly followed
        wk.Q: ("500.0", "25.0", "25.0"),  # 1d: no fill of ours; 7d agrees; 30d partly followed
        wk.R: ("0.0", "400.0", "400.0"),  # 7d, 30d: partly followed, not compared
    })  # fmt: skip
    store.write_snapshot("leaderboard", at(wk.W8, "23:00:00"), board)
    check = checks.trader_scorecards_agree_with_leaderboard
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [assets.trader_scorecards, check], partition_key=wk.W8, resources=built, instance=instance
        )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description == "2 of 5 windows disagree beyond max($100, 5% of the leaderboard's PnL)"
    listed = evaluation.metadata["disagreements"].value
    assert f"'ethAddress': '{wk.P}', 'window': '7d', 'realizedPnl': 21.0, 'leaderboardPnl': 1021.0" in listed
    assert "includes funding and unrealized PnL changes" in listed
    assert f"'ethAddress': '{wk.Q}', 'window': '1d'" in listed and "no fills of ours" in listed

    # Unrealized PnL that makes up the difference is named as the reason.
    cards = store.read("trader_scorecards", wk.W8).with_columns(unrealizedPnl=pl.lit(1000.0))
    _, bad = scorecards.leaderboard_disagreements(cards, board)
    assert bad.filter(pl.col("window") == "7d")["reason"].to_list() == [
        "the leaderboard's PnL includes unrealized PnL: ours plus unrealized agrees"
    ]
