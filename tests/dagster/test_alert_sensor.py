"""The fast alert sensor: the daily rule on new events, an outbox in order_alerts, exactly-once
delivery to a real local HTTP server (the generic webhook), measured latency. The other channels
and the noise rules: test_alert_delivery.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import polars as pl
import pytest
from pymongo.database import Database

from collector_service import schema, store
from collector_service.events.twaps import TwapState, twap_doc
from collector_service.metrics import Stats
from orderwatch_dagster import mongo, outbox, sensors
from orderwatch_dagster.resources import AlertChannels
from orderwatch_dagster.transforms.alerts import large_change_alerts
from orderwatch_dagster.transforms.events import RAW_ORDER_SCHEMA, normalize_order_events
from orderwatch_dagster.transforms.twaps import twap_alerts, twaps_table
from tests.dagster import scenario as sc


class Receiver:
    """A local HTTP endpoint recording (arrival time, Idempotency-Key, JSON body); can be told to fail."""

    def __init__(self) -> None:
        self.posts: list[tuple[datetime, str | None, dict]] = []
        self.attempts = 0
        self.fail = False
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                rec.attempts += 1
                if rec.fail:
                    self.send_response(503)
                else:
                    rec.posts.append((datetime.now(UTC), self.headers.get("Idempotency-Key"), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys(self) -> list[str]:
        return [a["alertKey"] for _, _, body in self.posts for a in body["alerts"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def default_rules(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty rules file: the built-in defaults, whatever the committed file says."""
    empty = tmp_path_factory.mktemp("rules") / "alert_rules.toml"
    empty.write_text("")
    monkeypatch.setenv("ORDERWATCH_ALERT_RULES", str(empty))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def tick(instance: dg.DagsterInstance, resources: dict, url: str, cursor: str | None):
    ctx = dg.build_sensor_context(
        cursor=cursor, instance=instance, resources={**resources, "alert_channels": AlertChannels(webhook_url=url)}
    )
    return sensors.fast_alert_sensor.evaluate_tick(ctx)


def new_order(addr: str, oid: int, sz: str, px: str, **extra: object) -> dict:
    now = datetime.now(UTC)
    return sc.order(addr, oid, "new", 0, now, coin="BTC", side="B", sz=sz, px=px, placed=now, created=now, **extra)


def test_fast_alerts_are_the_daily_rule_delivered_once(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    assert sensors.fast_alert_sensor.minimum_interval_seconds == 30
    first = tick(instance, resources, receiver.url, None)
    start = json.loads(first.cursor)["storedAt"]
    assert start.startswith(sc.D3)  # the newest stored document: history is the daily asset's
    assert not receiver.posts and seeded_db[schema.ALERTS].count_documents({}) == 0

    # A (labelled "Whale A") places a 200k order and a 1k one; one alert, POSTed in the same tick.
    orders = seeded_db[schema.ORDERS]
    big = new_order(sc.A, 900, "2.0", "100000.0")
    orders.insert_many([big, new_order(sc.A, 901, "0.01", "100000.0")])
    before = datetime.now(UTC)
    second = tick(instance, resources, receiver.url, first.cursor)
    after = datetime.now(UTC)
    assert receiver.keys() == [f"{sc.A}:900:new"]
    arrived, idem, body = receiver.posts[0]
    latency, tick_s = (arrived - big["createdAt"]).total_seconds(), (after - before).total_seconds()
    # The bound from an event's createdAt to its POST: one sensor interval plus one tick. The POST
    # is made within the tick that first sees the event (times compared, not durations bounded:
    # a loaded machine stretches the tick, not the order of events).
    print(f"fast alert: tick {tick_s:.3f} s, createdAt -> POST {latency:.3f} s; bound 30 s + tick")
    assert big["createdAt"] <= before <= arrived <= after
    assert idem == f"{sc.A}:900:new"
    assert f"{sc.A} (Whale A) B BTC oid 900 new: large_order notional 0 -> 200000 USD" in body["text"]
    stored = seeded_db[schema.ALERTS].find_one({"alertKey": f"{sc.A}:900:new"})
    assert stored["notifiedAt"] is not None and stored["deliveries"]["webhook"]["attempts"] == 1
    assert (stored["label"], stored["decision"]) == ("Whale A", "send")
    assert json.loads(second.cursor)["storedAt"] > start

    # Same rule as the daily asset: the daily transform on every event of the day gives the same row.
    every = normalize_order_events(
        pl.from_dicts(list(orders.find({}, {"_id": 0})), schema=RAW_ORDER_SCHEMA, strict=False)
    )
    day = big["createdAt"].date().isoformat()
    daily = large_change_alerts(every, day, watchlist=mongo.read_watchlist(seeded_db))
    fast = sensors.new_event_alerts(seeded_db, [big])
    assert fast.equals(daily.filter(pl.col("alertKey") == f"{sc.A}:900:new"))

    # A crash before the cursor advanced (the old cursor replayed), or a lost cursor: nothing twice.
    assert tick(instance, resources, receiver.url, first.cursor).skip_message.startswith("events=2 alerts=1 new=0")
    tick(instance, resources, receiver.url, None)
    # The daily asset upserting the same alert adds nothing either.
    assert mongo.write_alerts(seeded_db, daily) == 0
    assert receiver.keys() == [f"{sc.A}:900:new"]

    # A modify of 900 (cancel-and-replace, 200k -> 400k) in a later tick: judged against the
    # replaced order found in MongoDB's history (large_change), and 900's close is no large close.
    later = datetime.now(UTC)
    close = sc.order(sc.A, 900, "closed", 1, later, coin="BTC", side="B", sz="2.0", px="100000.0", placed=later,
                     created=later, finalStatus="canceled", replacedByOid=902)  # fmt: skip
    repl = new_order(sc.A, 902, "4.0", "100000.0", replacesOid=900)
    orders.insert_many([close, repl])
    third = tick(instance, resources, receiver.url, second.cursor)
    assert receiver.keys() == [f"{sc.A}:900:new", f"{sc.A}:902:new"]
    assert "new (replaces oid 900): large_change notional 200000 -> 400000 USD" in receiver.posts[1][2]["text"]

    # The endpoint fails: the alert stays undelivered with a retry count and a backed-off next
    # attempt; ticks before it is due do not retry; the first good tick after it delivers it once.
    receiver.fail = True
    orders.insert_one(new_order(sc.B, 903, "3.0", "100000.0"))
    failed = tick(instance, resources, receiver.url, third.cursor)
    assert "new=1 sent=0 failed=1" in failed.skip_message
    doc = seeded_db[schema.ALERTS].find_one({"alertKey": f"{sc.B}:903:new"})
    state = doc["deliveries"]["webhook"]
    assert doc.get("notifiedAt") is None and state["attempts"] == 1 and "503" in state["lastError"]
    assert state["nextAttemptAt"] - state["lastAttemptAt"] >= timedelta(seconds=29)
    attempts = receiver.attempts
    tick(instance, resources, receiver.url, failed.cursor)
    assert receiver.attempts == attempts  # not due yet
    receiver.fail = False
    due = state["nextAttemptAt"] + timedelta(seconds=1)
    real_now = sensors.utc_now
    sensors.utc_now = lambda: max(due, real_now())  # type: ignore[assignment]
    try:
        tick(instance, resources, receiver.url, failed.cursor)
        tick(instance, resources, receiver.url, failed.cursor)
    finally:
        sensors.utc_now = real_now  # type: ignore[assignment]
    assert receiver.keys() == [f"{sc.A}:900:new", f"{sc.A}:902:new", f"{sc.B}:903:new"]
    doc = seeded_db[schema.ALERTS].find_one({"alertKey": f"{sc.B}:903:new"})
    state = doc["deliveries"]["webhook"]
    assert doc["notifiedAt"] is not None and state["attempts"] == 2 and "lastError" not in state
    assert f"{sc.B} (Bee) B BTC oid 903" in receiver.posts[2][2]["text"]
    assert seeded_db[schema.ALERTS].count_documents({"notifiedAt": None}) == 0


def store_as_collector(mongo_uri: str, db_name: str, ops: list[store.Op]) -> None:
    """Write operations as a collector's writer does (it stamps ``storedAt``)."""
    database = store.Database(mongo_uri, db_name)
    try:
        database.write(ops, Stats())
    finally:
        database.close()


def test_a_large_twap_alerts_within_a_tick_of_its_first_slice_and_of_its_end_once(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receiver: Receiver, mongo_uri: str
) -> None:
    first = tick(instance, resources, receiver.url, None)
    now = datetime.now(UTC)
    started = now - timedelta(seconds=40)

    def status(user: str, twap_id: int, sz: str, status: str, executed: tuple[str, str], at: datetime) -> dict:
        state = TwapState("BTC", "B", sz, int(started.timestamp() * 1000), 5, *executed)
        return twap_doc(user, twap_id, state, status, at, source="node", observed_at=at)

    # A starts a TWAP of 4 BTC (~400k USD), B one of 0.1 BTC (~10k): no price yet, no alert
    starts = [status(sc.A, 1790001, "4.0", "activated", ("0.0", "0.0"), started),
              status(sc.B, 1790002, "0.1", "activated", ("0.0", "0.0"), started)]
    store_as_collector(mongo_uri, seeded_db.name, store.twap_ops(starts))
    second = tick(instance, resources, receiver.url, first.cursor)
    assert receiver.keys() == [] and "twap_statuses=2" in second.skip_message
    # the first slices (fills with twapId and a zero hash) price them: A's start alerts in that tick
    slices = [sc.fill(user, 500 + i, 600 + i, started + timedelta(seconds=30), coin="BTC", side="B", px="100000.0",
                      sz=sz, crossed=True, fee="1.0", twapId=twap_id, hash="0x" + "0" * 64)
              for i, (user, twap_id, sz) in enumerate([(sc.A, 1790001, "0.4"), (sc.B, 1790002, "0.01")])]
    store_as_collector(mongo_uri, seeded_db.name, store.fill_ops([{k: v for k, v in f.items() if k != "storedAt"}
                                                                  for f in slices]))
    third = tick(instance, resources, receiver.url, second.cursor)
    assert receiver.keys() == [f"{sc.A}:twap:1790001:activated"], third.skip_message
    # named as the watch list labels A, like the order alerts
    assert f"{sc.A} (Whale A) started TWAP 1790001 buy 4.0 BTC over 5 min (~$400000" in receiver.posts[0][2]["text"]
    # both end; A's end alerts in the next tick, with the exchange's final amounts
    ends = [status(sc.A, 1790001, "4.0", "finished", ("4.0", "401000.0"), now),
            status(sc.B, 1790002, "0.1", "terminated", ("0.05", "5000.0"), now)]
    store_as_collector(mongo_uri, seeded_db.name, store.twap_ops(ends))
    fourth = tick(instance, resources, receiver.url, third.cursor)
    assert receiver.keys() == [f"{sc.A}:twap:1790001:activated", f"{sc.A}:twap:1790001:finished"]
    assert "finished TWAP 1790001 buy 4.0 BTC over 5 min (~$401000" in receiver.posts[1][2]["text"]
    # the daily asset's alerts of the day are the same ones: stored once, sent once
    days = sorted({started.date().isoformat(), now.date().isoformat()})  # (one day, unless run at midnight)
    watchlist = mongo.read_watchlist(seeded_db)
    built = [twaps_table(mongo.read_twaps(seeded_db, d), mongo.read_fills(seeded_db, d), d, watchlist) for d in days]
    # the table carries the watch list's label and tags, as the other tables do
    assert {(r["ethAddress"], r["label"], tuple(r["tags"])) for r in built[-1].iter_rows(named=True)} == {
        (sc.A, "Whale A", ("whales", "btc")), (sc.B, "Bee", ())}
    daily = pl.concat([twap_alerts(table, d, 250_000.0) for table, d in zip(built, days, strict=True)])
    assert sorted(daily["alertKey"]) == sorted(receiver.keys()) and mongo.write_alerts(seeded_db, daily) == 0
    tick(instance, resources, receiver.url, second.cursor)  # a replayed cursor
    tick(instance, resources, receiver.url, fourth.cursor)
    assert len(receiver.posts) == 2
    assert seeded_db[schema.ALERTS].count_documents({"action": "twap", "label": "Whale A"}) == 2


def test_an_event_journaled_earlier_but_stored_after_the_cursor_moved_is_alerted(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receiver: Receiver, mongo_uri: str
) -> None:
    first = tick(instance, resources, receiver.url, None)
    # Shard 1 journals a large order of A, but its writes lag (MongoDB unreachable from it, or a
    # restart replaying its journal); shard 2 journals and writes one of B later; a tick runs.
    lagging = new_order(sc.A, 920, "2.0", "100000.0")
    lagging["createdAt"] -= timedelta(seconds=1)
    sc.write_as_collector(mongo_uri, seeded_db.name, [new_order(sc.B, 921, "2.0", "100000.0")])
    second = tick(instance, resources, receiver.url, first.cursor)
    assert receiver.keys() == [f"{sc.B}:921:new"]
    # Shard 1 catches up: its order was journaled before the one already alerted.
    sc.write_as_collector(mongo_uri, seeded_db.name, [lagging])
    stored = seeded_db[schema.ORDERS].find_one({"oid": 920})
    assert stored["createdAt"] < seeded_db[schema.ORDERS].find_one({"oid": 921})["createdAt"]
    tick(instance, resources, receiver.url, second.cursor)
    assert receiver.keys() == [f"{sc.B}:921:new", f"{sc.A}:920:new"]


def test_a_document_stamped_before_one_already_read_is_alerted_within_the_margin(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    """Y is read first; X, stamped 5 s before Y (a long batch insert, or a shard whose clock is
    behind), becomes readable after that tick: the next tick still reads it."""
    first = tick(instance, resources, receiver.url, None)
    now = datetime.now(UTC)
    orders = seeded_db[schema.ORDERS]
    orders.insert_one(new_order(sc.B, 922, "2.0", "100000.0") | {"storedAt": now - timedelta(seconds=5)})
    second = tick(instance, resources, receiver.url, first.cursor)
    assert receiver.keys() == [f"{sc.B}:922:new"]  # at once: the margin delays no alert
    orders.insert_one(new_order(sc.A, 923, "2.0", "100000.0") | {"storedAt": now - timedelta(seconds=10)})
    third = tick(instance, resources, receiver.url, second.cursor)
    assert receiver.keys() == [f"{sc.B}:922:new", f"{sc.A}:923:new"]
    assert "new=0" in tick(instance, resources, receiver.url, third.cursor).skip_message  # read again, sent once
    assert receiver.keys() == [f"{sc.B}:922:new", f"{sc.A}:923:new"]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_without_a_url_alerts_are_written_and_wait(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance
) -> None:
    first = tick(instance, resources, "", None)
    seeded_db[schema.ORDERS].insert_one(new_order(sc.C, 904, "2.0", "100000.0"))
    tick(instance, resources, "", first.cursor)
    doc = seeded_db[schema.ALERTS].find_one({"alertKey": f"{sc.C}:904:new"})
    assert doc is not None and doc.get("notifiedAt") is None and "deliveries" not in doc
    assert doc["decision"] == "send"  # decided; it goes out once a channel is configured
    assert seeded_db[schema.ALERTS].count_documents({"notifiedAt": None}) == 1
