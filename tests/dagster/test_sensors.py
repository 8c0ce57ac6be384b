"""Sensors with real cursors: late events against nx-27017 (alert delivery: test_alert_delivery.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import polars as pl
import pytest
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster import sensors
from orderwatch_dagster.assets import daily_assets
from orderwatch_dagster.checks import daily_checks
from orderwatch_dagster.definitions import defs
from orderwatch_dagster.transforms.events import RAW_ORDER_SCHEMA, normalize_order_events
from tests.dagster import scenario as sc


class Clock:
    """The sensors' clock (``sensors.utc_now``): the real time plus ``ahead``, after the scenario's
    days (D1 and D2 are past days; today is left to the intraday schedule)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """No store margin unless a test sets one: these tests store documents and build days within
    milliseconds of each other (the margin's own tests: ``*_margin*``)."""
    monkeypatch.setattr(sensors, "STORE_MARGIN", timedelta(0))
    c = Clock()
    monkeypatch.setattr(sensors, "utc_now", c)
    return c


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def late_tick(instance: dg.DagsterInstance, resources: dict, cursor: str | None):
    ctx = dg.build_sensor_context(
        cursor=cursor, instance=instance, resources=resources, repository_def=defs.get_repository_def()
    )
    return sensors.late_events_sensor.evaluate_tick(ctx)


def test_late_events_request_built_days_again(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance
) -> None:
    first = late_tick(instance, resources, None)
    assert not first.run_requests
    assert "cursor initialised" in (first.skip_message or "")
    cursor = first.cursor
    assert json.loads(cursor)["storedAt"].startswith(sc.D3)  # the newest document

    for day in (sc.D1, sc.D2):
        assert dg.materialize(
            [*daily_assets, *daily_checks], partition_key=day, resources=resources, instance=instance
        ).success

    # Nothing new yet.
    quiet = late_tick(instance, resources, cursor)
    assert not quiet.run_requests

    # A REST backfill lands now for D1 (already built), and an event for a never-built day.
    now = datetime.now(UTC)  # after the scenario's newest document and after the builds
    late = sc.order(
        sc.A,
        105,
        "new",
        0,
        sc.at(sc.D1, "23:59:00"),
        coin="BTC",
        side="B",
        sz="1.0",
        px="1.0",
        placed=sc.at(sc.D1, "23:58:00"),
        created=now,
        source="rest",
    )
    unbuilt = sc.order(
        sc.A,
        106,
        "new",
        0,
        sc.at("2026-11-20", "08:00:00"),
        coin="BTC",
        side="B",
        sz="1.0",
        px="1.0",
        placed=sc.at("2026-11-20", "08:00:00"),
        created=now + timedelta(milliseconds=5),
    )
    seeded_db[schema.ORDERS].insert_many([late, unbuilt])
    tick = late_tick(instance, resources, quiet.cursor)
    assert [r.partition_key for r in tick.run_requests] == [sc.D1]
    assert tick.run_requests[0].run_key.startswith(f"late:{sc.D1}:")
    assert tick.cursor != quiet.cursor

    # The same documents are not reported twice.
    again = late_tick(instance, resources, tick.cursor)
    assert not again.run_requests

    # The collector resolves 104's "unknown" close in place: D2 is rebuilt, once per resolution.
    seeded_db[schema.ORDERS].update_one(
        {"ethAddress": sc.A, "oid": 104, "eventKey": "closed"}, {"$set": {"finalStatus": "canceled"}}
    )
    resolved = late_tick(instance, resources, again.cursor)
    assert [r.partition_key for r in resolved.run_requests] == [sc.D2]
    key = resolved.run_requests[0].run_key
    assert key.startswith(f"resolved:{sc.D2}:")
    assert (
        late_tick(instance, resources, resolved.cursor).run_requests[0].run_key == key
    )  # same key: deduplicated by Dagster

    # After the rebuild the Parquet agrees with MongoDB and nothing more is requested.
    assert dg.materialize(
        [*daily_assets, *daily_checks], partition_key=sc.D2, resources=resources, instance=instance
    ).success
    assert not late_tick(instance, resources, resolved.cursor).run_requests


def test_a_link_added_later_rebuilds_its_day(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance
) -> None:
    first = late_tick(instance, resources, None)
    assert set(json.loads(first.cursor)) == {"storedAt", "linkedAt", "fillsStoredAt"}
    for day in (sc.D1, sc.D2):
        assert dg.materialize(
            [*daily_assets, *daily_checks], partition_key=day, resources=resources, instance=instance
        ).success
    quiet = late_tick(instance, resources, first.cursor)
    assert not quiet.run_requests

    # A REST recovery links C-340's close (D2) to 350 after D2 was built: the collector adds the
    # link to the stored document with linkedAt (read and replace: nx-27017 would store a
    # datetime given to $set as text). storedAt does not move, so only linkedAt tells.
    coll = seeded_db[schema.ORDERS]
    doc = coll.find_one({"ethAddress": sc.C, "oid": 340, "eventKey": "closed"})
    linked_at = datetime.now(UTC)
    doc.update(replacedByOid=350, replaceMatch="inferred", linkedAt=linked_at)
    coll.replace_one({"_id": doc["_id"]}, doc)

    tick = late_tick(instance, resources, quiet.cursor)
    assert [(r.partition_key, r.tags["orderwatch/trigger"]) for r in tick.run_requests] == [(sc.D2, "linked-later")]
    assert tick.run_requests[0].run_key.startswith(f"linked:{sc.D2}:")
    assert json.loads(tick.cursor)["storedAt"] == json.loads(quiet.cursor)["storedAt"]
    assert not late_tick(instance, resources, tick.cursor).run_requests  # reported once
    # A cursor written before links and storedAt existed starts the links at its createdAt.
    old_cursor = json.dumps({"createdAt": json.loads(quiet.cursor)["storedAt"]})
    assert [r.run_key for r in late_tick(instance, resources, old_cursor).run_requests] == [
        tick.run_requests[0].run_key
    ]

    # The rebuild picks the link up (340 -> 350 is one logical order now), and asks for no more.
    assert dg.materialize(
        [*daily_assets, *daily_checks], partition_key=sc.D2, resources=resources, instance=instance
    ).success
    lc = resources["store"].read("order_lifecycles", sc.D2).filter(pl.col("ethAddress") == sc.C)
    assert lc.filter(pl.col("rootOid") == 340).select("oid", "amendCount").row(0) == (350, 1)
    assert 350 not in lc["rootOid"].to_list()
    assert not late_tick(instance, resources, quiet.cursor).run_requests  # built after the link


def test_late_fills_rebuild_the_day_they_traded(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance
) -> None:
    first = late_tick(instance, resources, None)
    # B-202's D3 fill is the newest stored fill.
    assert json.loads(first.cursor)["fillsStoredAt"] == sc.at(sc.D3, "01:00:01").isoformat()
    for day in (sc.D1, sc.D2):
        assert dg.materialize(
            [*daily_assets, *daily_checks], partition_key=day, resources=resources, instance=instance
        ).success
    quiet = late_tick(instance, resources, first.cursor)
    assert not quiet.run_requests

    # A REST recovery stores, now, a fill that traded on D1: D1 is rebuilt (by the fill's time,
    # not by when it was stored); nothing else.
    now = datetime.now(UTC)
    late = sc.fill(sc.C, 300, 3001, sc.at(sc.D1, "21:00:00"), coin="BTC", side="B", px="50000.0", sz="0.25",
                   crossed=False, fee="1.875") | {"source": "rest", "observedAt": now, "createdAt": now,
                                                  "storedAt": now}  # fmt: skip
    seeded_db[schema.FILLS].insert_one(late)
    tick = late_tick(instance, resources, quiet.cursor)
    assert [(r.partition_key, r.tags["orderwatch/trigger"]) for r in tick.run_requests] == [(sc.D1, "late-fills")]
    assert tick.run_requests[0].run_key.startswith(f"fills:{sc.D1}:{now.isoformat()[:19]}")
    assert json.loads(tick.cursor)["storedAt"] == json.loads(quiet.cursor)["storedAt"]
    assert not late_tick(instance, resources, tick.cursor).run_requests  # reported once
    # A cursor written before fills existed starts the fills at its storedAt: same request.
    old_cursor = json.dumps({k: v for k, v in json.loads(quiet.cursor).items() if k != "fillsStoredAt"})
    assert [r.run_key for r in late_tick(instance, resources, old_cursor).run_requests] == [
        tick.run_requests[0].run_key
    ]

    # The rebuild picks the fill up: C-300 (open at D1's end) has now traded 0.25 (a partial fill
    # the events had not shown: a warning, not a failure).
    result = dg.materialize([*daily_assets, *daily_checks], partition_key=sc.D1, resources=resources, instance=instance)
    assert result.success
    lc = resources["store"].read("order_lifecycles", sc.D1).filter(pl.col("rootOid") == 300)
    assert lc.select("filledSz", "filledSzEvents", "nFills", "makerShare").row(0) == (Decimal("0.25"), 0, 1, 1.0)
    assert resources["store"].read("fills", sc.D1).height == 2
    assert not late_tick(instance, resources, quiet.cursor).run_requests  # built after the fill


def late_order(oid: int, observed: datetime, journaled: datetime) -> dict:
    return sc.order(sc.A, oid, "new", 0, observed, coin="BTC", side="B", sz="1.0", px="1.0", placed=observed,
                    created=journaled)  # fmt: skip


def test_an_event_journaled_before_the_build_but_stored_after_it_rebuilds_its_day(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, mongo_uri: str, clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(sensors, "STORE_MARGIN", timedelta(seconds=30))
    first = late_tick(instance, resources, None)
    # The collector journals D1's 23:58 event, then is killed (or MongoDB is down, or its shard
    # lags); D1 is built meanwhile; the restarted collector writes the journal to MongoDB.
    journaled = datetime.now(UTC)
    event = late_order(107, sc.at(sc.D1, "23:58:00"), journaled)
    assert dg.materialize(
        [*daily_assets, *daily_checks], partition_key=sc.D1, resources=resources, instance=instance
    ).success
    sc.write_as_collector(mongo_uri, seeded_db.name, [event])
    stored = seeded_db[schema.ORDERS].find_one({"ethAddress": sc.A, "oid": 107})
    built = instance.get_run_records(limit=1)[0].start_time
    assert stored["createdAt"].timestamp() < built < stored["storedAt"].timestamp()

    clock.ahead = timedelta(seconds=31)  # read once the store margin has passed
    tick = late_tick(instance, resources, first.cursor)
    assert [(r.partition_key, r.tags["orderwatch/trigger"]) for r in tick.run_requests] == [(sc.D1, "late-events")]
    assert not late_tick(instance, resources, tick.cursor).run_requests  # reported once


def test_a_document_stamped_before_one_already_stored_is_not_skipped_within_the_margin(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Two shards: Y (D1) is readable first; X (D2), stamped 5 s before Y (a long batch insert, or
    a shard whose clock is behind), becomes readable after it. X's day is rebuilt too."""
    monkeypatch.setattr(sensors, "STORE_MARGIN", timedelta(seconds=30))
    first = late_tick(instance, resources, None)
    for day in (sc.D1, sc.D2):
        assert dg.materialize(
            [*daily_assets, *daily_checks], partition_key=day, resources=resources, instance=instance
        ).success
    base = datetime.now(UTC)
    orders = seeded_db[schema.ORDERS]
    orders.insert_one(late_order(108, sc.at(sc.D1, "23:00:00"), base) | {"storedAt": base + timedelta(seconds=20)})
    clock.ahead = timedelta(seconds=40)
    quiet = late_tick(instance, resources, first.cursor)
    assert not quiet.run_requests  # Y is stored less than the margin ago: not read yet
    orders.insert_one(late_order(109, sc.at(sc.D2, "23:00:00"), base) | {"storedAt": base + timedelta(seconds=15)})
    clock.ahead = timedelta(seconds=60)
    tick = late_tick(instance, resources, quiet.cursor)
    assert sorted(r.partition_key for r in tick.run_requests) == [sc.D1, sc.D2]


def test_resolved_statuses_read_partitions_of_any_schema(seeded_db: Database, resources: dict) -> None:
    store = resources["store"]
    events = normalize_order_events(
        pl.from_dicts(sc.orders(), schema=RAW_ORDER_SCHEMA, strict=False)
    )
    # D1 written before dex and the links existed, D2 after.
    new_columns = ["dex", "replacesOid", "replacedByOid", "replaceMatch"]
    store.write(
        "order_events",
        sc.D1,
        events.filter(pl.col("eventAt").dt.date() == sc.at(sc.D1, "00:00:00").date()).drop(new_columns),
    )
    store.write("order_events", sc.D2, events.filter(pl.col("eventAt").dt.date() == sc.at(sc.D2, "00:00:00").date()))
    assert sensors._resolved_unknown_days(store, seeded_db) == {}
    seeded_db[schema.ORDERS].update_one(
        {"ethAddress": sc.A, "oid": 104, "eventKey": "closed"}, {"$set": {"finalStatus": "canceled"}}
    )
    assert list(sensors._resolved_unknown_days(store, seeded_db)) == [sc.D2]
