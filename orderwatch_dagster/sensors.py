"""Sensors: rebuild days that received late events, and deliver new alerts to the alert channels."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from collector_service import schema
from orderwatch_dagster import liquidation, mongo, outbox, position_alerts, settings, tables
from orderwatch_dagster.assets import fills, order_events
from orderwatch_dagster.jobs import daily_tables_job
from orderwatch_dagster.resources import AlertChannels, MongoResource, ParquetStore
from orderwatch_dagster.rules import load_rules
from orderwatch_dagster.transforms import twaps
from orderwatch_dagster.transforms.alerts import AlertThresholds, large_change_alerts

LATE_BATCH = 50_000
"""Documents read per tick; the cursor resumes where a full batch stopped."""

STORE_MARGIN = timedelta(seconds=float(settings.read("ORDERWATCH_STORE_MARGIN_S")))
"""How long after its ``storedAt`` a document may still be unreadable, plus how far apart the
clocks of the collector hosts and of Dagster may be (``ORDERWATCH_STORE_MARGIN_S``, default 30).
The sensors follow ``storedAt`` (when the collector wrote the document to MongoDB), never
``createdAt`` (when it was journaled, possibly long before). A batch insert becomes readable
while it runs, and every collector shard stamps with its own clock, so a document can turn up
with a ``storedAt`` a little older than one already read: ``late_events_sensor`` reads only
documents stored at least this long ago, and ``fast_alert_sensor`` reads the documents of the
last margin again on its next tick."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

POSITION_FIELDS = {"ethAddress": 1, "dex": 1, "coin": 1, "szi": 1, "entryPx": 1, "leverage": 1, "serverTime": 1}
"""What a position alert reads of a ``trader_positions`` document (orderwatch_dagster.position_alerts)."""


def utc_now() -> datetime:
    """The current time (a seam for tests)."""
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def _built_at(instance: dg.DagsterInstance, day: str, asset_key: dg.AssetKey) -> datetime | None:
    """When the run that last materialized the day's partition of ``asset_key`` started (the asset
    read MongoDB after that, not at the materialization's end), if it ever did."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day]), limit=1
    ).records
    if not records:
        return None
    run = instance.get_run_record_by_id(records[0].run_id)
    started = run.start_time if run is not None and run.start_time is not None else records[0].timestamp
    return datetime.fromtimestamp(started, UTC)


def _stored_after_build(instance: dg.DagsterInstance, day: str, newest: datetime, asset_key: dg.AssetKey) -> bool:
    """Whether a document of ``day`` stored at ``newest`` may be missing from the day's build:
    stored later than :data:`STORE_MARGIN` before the build started (never built: not missing,
    the schedules build it)."""
    built = _built_at(instance, day, asset_key)
    return built is not None and newest > built - STORE_MARGIN


def _resolved_unknown_days(store: ParquetStore, db: object) -> dict[str, str]:
    """Days whose Parquet still says finalStatus "unknown" for a close MongoDB has since resolved
    (the collector updates a closed document's finalStatus in place); value = a key for run_key."""
    if not store.days("order_events"):
        return {}
    unknown = (
        pl.scan_parquet(
            store.tables().url("order_events/*/*.parquet"),
            hive_partitioning=True,
            missing_columns="insert",  # partitions written before a column was added
            extra_columns="ignore",
        )
        .filter((pl.col("action") == schema.ACTION_CLOSED) & (pl.col("finalStatus") == schema.FINAL_STATUS_UNKNOWN))
        .select("ethAddress", "oid", pl.col("date").cast(pl.String))
        .collect()
    )
    if unknown.is_empty():
        return {}
    docs = db[schema.ORDERS].find(  # type: ignore[index]
        {"action": schema.ACTION_CLOSED, "oid": {"$in": unknown["oid"].unique().to_list()}},
        {"_id": 0, "ethAddress": 1, "oid": 1, "finalStatus": 1},
    )
    resolved = {(d["ethAddress"], d["oid"]): d.get("finalStatus") for d in docs}
    days: dict[str, list[str]] = defaultdict(list)
    for addr, oid, day in unknown.iter_rows():
        status = resolved.get((addr, oid))
        if status and status != schema.FINAL_STATUS_UNKNOWN:
            days[day].append(f"{addr}:{oid}={status}")
    return {day: hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()[:12] for day, keys in days.items()}


def _newest(coll: object, field: str) -> datetime | None:
    """The newest ``field`` value in ``coll`` (documents without it sort last), if any."""
    doc = coll.find_one({}, {"_id": 0, field: 1}, sort=[(field, -1)])  # type: ignore[attr-defined]
    return doc.get(field) if doc else None


def _cursor_at(cursor: dict[str, str], *keys: str) -> datetime:
    """The first of ``keys`` the cursor holds: a cursor written before a key existed (``storedAt``
    replaced ``createdAt``; links and fills came later) starts that key where the older one was."""
    return datetime.fromisoformat(next(cursor[k] for k in keys if k in cursor))


def _batch(
    coll: object, field: str, since: datetime, until: datetime | None, projection: dict[str, int]
) -> list[dict]:
    """Documents with ``field`` after ``since`` and not after ``until`` (None: no bound), oldest
    first, at most :data:`LATE_BATCH`; a batch cut by the limit stops before its last ``field``
    value so that documents sharing it are not skipped."""
    # $gte and then > in Python: nx-27017 evaluates $gt on datetimes within the same second as
    # false (a document 200 ms after the cursor would be skipped); real MongoDB gives the same.
    found = list(
        coll.find({field: {"$gte": since}}, {"_id": 0, field: 1, **projection})  # type: ignore[attr-defined]
        .sort(field, 1)
        .limit(LATE_BATCH)
    )
    docs = [d for d in found if d[field] > since and (until is None or d[field] <= until)]
    if len(found) == LATE_BATCH and docs and docs[-1] is found[-1]:
        last = docs[-1][field]
        docs = [d for d in docs if d[field] < last] or docs
    return docs


def _day_of(doc: dict) -> str:
    """The partition day of a ``trader_orders`` document: observedAt, else createdAt."""
    return (doc.get("observedAt") or doc["createdAt"]).astimezone(UTC).date().isoformat()


def _fill_day(doc: dict) -> str:
    """The partition day of a ``trader_fills`` document: the fill's time."""
    return doc["time"].astimezone(UTC).date().isoformat()


def _newest_by_day(docs: list[dict], field: str, day_of: Callable[[dict], str]) -> dict[str, datetime]:
    newest: dict[str, datetime] = {}
    for d in docs:
        day = day_of(d)
        newest[day] = max(newest.get(day, d[field]), d[field])
    return newest


@dg.sensor(
    job=daily_tables_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def late_events_sensor(
    context: dg.SensorEvaluationContext, mongo_db: MongoResource, store: ParquetStore
) -> dg.SensorResult | dg.SkipReason:
    """Rebuild an already-built day when documents for it reach MongoDB after its build (late
    data, REST backfills, a journal replayed after a restart or an outage, a lagging shard), when a
    close it holds as "unknown" has since been resolved, when a replacement link was added later to
    one of its documents (``linkedAt``: a REST recovery found the other half of a modify; the day's
    amend chains change), or when fills of that day (by the fill's ``time``) were stored after its
    ``fills`` partition was built (a REST recovery after a gap, ``backfill``).

    "After its build" compares the collector's ``storedAt`` (``linkedAt``) with the start of the
    run that built the partition, less :data:`STORE_MARGIN`; only documents stored at least that
    margin ago are read, so one stamped before a document already read but readable only later is
    not skipped. The cursor holds the newest ``storedAt`` and ``linkedAt`` read in
    ``trader_orders`` and the newest ``storedAt`` in ``trader_fills`` (``fillsStoredAt``); on the
    first tick they start at the newest document (earlier days are the schedules' business).
    Today is left to the 15-minute refresh.
    """
    now = utc_now()
    today = now.date().isoformat()
    until = now - STORE_MARGIN
    with mongo_db.get_db() as db:
        coll = db[schema.ORDERS]
        fills_coll = db[schema.FILLS]
        if context.cursor is None:
            start = _newest(coll, "storedAt") or EPOCH
            fills_start = _newest(fills_coll, "storedAt") or start
            context.update_cursor(
                json.dumps({"storedAt": _iso(start), "linkedAt": _iso(start), "fillsStoredAt": _iso(fills_start)})
            )
            return dg.SkipReason(f"cursor initialised at storedAt={_iso(start)}")
        cursor_doc = json.loads(context.cursor)
        since = _cursor_at(cursor_doc, "storedAt", "createdAt")
        linked_since = _cursor_at(cursor_doc, "linkedAt", "storedAt", "createdAt")
        fills_since = _cursor_at(cursor_doc, "fillsStoredAt", "fillsCreatedAt", "storedAt", "createdAt")
        docs = _batch(coll, "storedAt", since, until, {"observedAt": 1, "createdAt": 1})
        linked = _batch(coll, "linkedAt", linked_since, until, {"observedAt": 1, "createdAt": 1})
        fill_docs = _batch(fills_coll, "storedAt", fills_since, until, {"time": 1})
        resolved = _resolved_unknown_days(store, db)

    changes = [
        ("late", "late-events", _newest_by_day(docs, "storedAt", _day_of), order_events.key),
        ("linked", "linked-later", _newest_by_day(linked, "linkedAt", _day_of), order_events.key),
        ("fills", "late-fills", _newest_by_day(fill_docs, "storedAt", _fill_day), fills.key),
    ]
    requests: list[dg.RunRequest] = []
    for prefix, trigger, newest_by_day, asset_key in changes:
        requested = {r.partition_key for r in requests}
        for day, newest in sorted(newest_by_day.items()):
            if day != today and day not in requested and _stored_after_build(context.instance, day, newest, asset_key):
                requests.append(
                    dg.RunRequest(
                        run_key=f"{prefix}:{day}:{_iso(newest)}",
                        partition_key=day,
                        tags={"orderwatch/trigger": trigger},
                    )
                )
    requested = {r.partition_key for r in requests}
    for day, key in sorted(resolved.items()):
        if day != today and day not in requested:
            requests.append(
                dg.RunRequest(
                    run_key=f"resolved:{day}:{key}", partition_key=day, tags={"orderwatch/trigger": "resolved-status"}
                )
            )

    cursor = {
        "storedAt": _iso(docs[-1]["storedAt"]) if docs else _iso(since),
        "linkedAt": _iso(linked[-1]["linkedAt"]) if linked else _iso(linked_since),
        "fillsStoredAt": _iso(fill_docs[-1]["storedAt"]) if fill_docs else _iso(fills_since),
    }
    new_cursor = json.dumps(cursor) if docs or linked or fill_docs else context.cursor
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)


# Fast alerts: the daily rule on new events, an outbox in order_alerts ---------------------------

FAST_ALERT_INTERVAL_S = int(settings.read("ORDERWATCH_FAST_ALERT_INTERVAL_S"))
"""How often the fast alert sensor runs (``minimum_interval_seconds``; ``ORDERWATCH_FAST_ALERT_INTERVAL_S``,
default 30): with the collector's flush, the bound on a large change's delay to its message."""


def new_event_alerts(db: object, docs: list[dict], params: AlertThresholds | None = None) -> pl.DataFrame:
    """The alerts that the new ``trader_orders`` documents ``docs`` raise, by the daily rule
    (:func:`large_change_alerts`), in the ``large_change_alerts`` schema.

    The rule sees the new events plus the history it needs: every stored event of the orders they
    touch, of the orders linked to those (``replacesOid`` / ``replacedByOid``, both directions),
    so that an update is compared with the order's earlier state and a replacement with the order
    it replaced. It runs once per UTC day of the new events; only the new events' alerts are kept.
    """
    if not docs:
        return pl.DataFrame(schema=tables.schema(tables.LARGE_CHANGE_ALERTS))
    addrs = sorted({d["ethAddress"] for d in docs})
    oids = sorted({d["oid"] for d in docs})
    near = mongo.read_order_events_where(
        db,  # type: ignore[arg-type]
        [
            {"ethAddress": {"$in": addrs}, "oid": {"$in": oids}},
            {"ethAddress": {"$in": addrs}, "replacesOid": {"$in": oids}},
            {"ethAddress": {"$in": addrs}, "replacedByOid": {"$in": oids}},
        ],
    )
    linked = set(near["replacesOid"].drop_nulls()) | set(near["replacedByOid"].drop_nulls()) | set(near["oid"])
    extra = sorted(linked - set(oids))
    filters = [{"ethAddress": {"$in": addrs}, "oid": {"$in": oids + extra}}]
    events = mongo.read_order_events_where(db, filters) if extra else near  # type: ignore[arg-type]
    keys = sorted({f"{d['ethAddress']}:{d['oid']}:{d['eventKey']}" for d in docs})
    key = pl.concat_str([pl.col("ethAddress"), pl.col("oid").cast(pl.String), pl.col("eventKey")], separator=":")
    days = events.filter(key.is_in(keys))["eventAt"].dt.date().unique().sort().to_list()
    watchlist = mongo.read_watchlist(db)  # type: ignore[arg-type]
    params = params or AlertThresholds()
    out = [
        large_change_alerts(events, day, params, watchlist).filter(pl.col("alertKey").is_in(keys))
        for day in days
    ]
    return pl.concat(out) if out else pl.DataFrame(schema=tables.schema(tables.LARGE_CHANGE_ALERTS))


def new_twap_alerts(db: object, twap_docs: list[dict], slice_fills: list[dict], threshold_usd: float,
                    now: datetime) -> pl.DataFrame:
    """The large-TWAP alerts (:func:`twaps.twap_alerts`, the daily rule) of the TWAPs that new
    ``trader_twaps`` documents or new slice fills touch, from each TWAP's documents and slice fills
    stored by ``now``: an end with its end status, a start once a slice gave it a price. Alerts
    already stored (by the daily asset or an earlier tick) have the same ``alertKey``."""
    keys = {(d["ethAddress"], d["twapId"]) for d in [*twap_docs, *slice_fills]}
    if not keys:
        return pl.DataFrame(schema=twaps.TWAP_ALERT_SCHEMA)
    docs, fills_of = mongo.read_twaps_of(db, keys)  # type: ignore[arg-type]
    table = twaps.twaps_between(docs, fills_of, EPOCH, now, mongo.read_watchlist(db))  # type: ignore[arg-type]
    return twaps.twap_alerts_between(table, EPOCH, now, threshold_usd)


def _upto(since: datetime, docs: list[dict], now: datetime) -> datetime:
    """Where a fast cursor goes after reading ``docs``: to the newest ``storedAt`` read, but no
    further than :data:`STORE_MARGIN` ago (the last margin is read again next tick)."""
    return max(since, min(docs[-1]["storedAt"], now - STORE_MARGIN)) if docs else since


def _follow(coll: object, cursor: dict[str, str], key: str, projection: dict[str, int],
            now: datetime) -> tuple[list[dict], str]:
    """The documents of ``coll`` stored after the cursor's ``key`` (a cursor without it starts at
    the newest: earlier ones are the daily asset's), and where the cursor goes next (:func:`_upto`)."""
    if key not in cursor:
        return [], _iso(_newest(coll, "storedAt") or EPOCH)
    since = datetime.fromisoformat(cursor[key])
    docs = _batch(coll, "storedAt", since, None, projection)
    return docs, _iso(_upto(since, docs, now))


@dg.sensor(
    minimum_interval_seconds=FAST_ALERT_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        f"Every {FAST_ALERT_INTERVAL_S} s: the large-change rule (alert_rules.toml) on new trader_orders events, "
        "position alerts on new trader_positions documents, the near_liquidation rule on open positions and "
        "the large-TWAP rule on new trader_twaps documents and TWAP slice fills -> "
        "order_alerts (outbox), the noise rules' decision per alert, then each message once per channel "
        "(generic webhook, Slack, Discord, Telegram)."
    ),
)
def fast_alert_sensor(
    context: dg.SensorEvaluationContext, mongo_db: MongoResource, alert_channels: AlertChannels
) -> dg.SkipReason:
    """Alerts within a tick of the event, each message delivered once per channel.

    1. Read the ``trader_orders`` documents with ``storedAt`` after the cursor (oldest first, at
       most :data:`LATE_BATCH`), compute their alerts with the daily rule and the thresholds of
       the rules file (:func:`new_event_alerts`) and insert them into ``order_alerts``
       (``$setOnInsert`` on the unique ``alertKey``: recomputing is harmless).
    2. Only then advance the cursor, to the newest ``storedAt`` read but no further than
       :data:`STORE_MARGIN` ago: the documents of the last margin are read again next tick, so
       one that became readable after a newer one was read (a long batch insert, a shard whose
       clock is behind) is not skipped; their alerts already exist (no-ops). A crash before the
       cursor is written recomputes the same alerts: no-ops too.
    3. Decide each new alert's delivery by the noise rules (:func:`outbox.decide_pending`), whoever
       wrote it (this sensor or the daily asset), and send the due messages on every enabled
       channel (:func:`outbox.deliver_due`): decisions and delivery state live in MongoDB, not in
       the cursor, so a lost or reset cursor sends nothing twice.

    Large TWAPs the same way (:func:`new_twap_alerts`): the ``trader_twaps`` documents and the
    TWAP slice fills stored since their own cursors (``twapsStoredAt``, ``twapFillsStoredAt``)
    name the TWAPs to check; their start and end alerts have the daily asset's ``alertKey``, so
    each is stored once whichever writes it first.

    The rules file is read on every tick: an edit applies from the next one. The first tick
    starts the cursor at the newest document (earlier events are the daily asset's).
    """
    rules = load_rules()
    channels = alert_channels.channels()
    with mongo_db.get_db() as db:
        coll, positions = db[schema.ORDERS], db[schema.POSITIONS]
        if context.cursor is None:
            since = _newest(coll, "storedAt") or EPOCH
            since_positions = _newest(positions, "storedAt") or EPOCH
            docs: list[dict] = []
            changes: list[dict] = []
        else:
            cursor = json.loads(context.cursor)
            since = _cursor_at(cursor, "storedAt", "createdAt")
            since_positions = _cursor_at(cursor, "positionsStoredAt", "storedAt", "createdAt")
            docs = _batch(coll, "storedAt", since, None, {"ethAddress": 1, "oid": 1, "eventKey": 1})
            changes = _batch(positions, "storedAt", since_positions, None, POSITION_FIELDS)
        alerts = new_event_alerts(db, docs, rules.thresholds.params())
        inserted = mongo.write_alerts(db, alerts, utc_now()) if not alerts.is_empty() else 0
        now = utc_now()
        near_liquidation = liquidation.raise_alerts(db, rules, now)
        position_changes = position_alerts.raise_alerts(db, changes, now)
        cursor = {
            **json.loads(context.cursor or "{}"),
            "storedAt": _iso(_upto(since, docs, now)),
            "positionsStoredAt": _iso(_upto(since_positions, changes, now)),
        }
        key = {"ethAddress": 1, "twapId": 1}
        twap_docs, cursor["twapsStoredAt"] = _follow(db[schema.TWAPS], cursor, "twapsStoredAt", key, now)
        fills_read, cursor["twapFillsStoredAt"] = _follow(db[schema.FILLS], cursor, "twapFillsStoredAt", key, now)
        slices = [f for f in fills_read if f.get("twapId") is not None]
        # a document's statusTime or fill time may be ahead of this clock by up to the margin
        twap_found = new_twap_alerts(db, twap_docs, slices, rules.thresholds.twap_threshold_usd, now + STORE_MARGIN)
        inserted += mongo.write_alerts(db, twap_found, now) if not twap_found.is_empty() else 0
        context.update_cursor(json.dumps(cursor))
        decided = outbox.decide_pending(db, rules, now)
        delivered = outbox.deliver_due(db, channels, rules, context.log, now)
    sent = sum(s for s, _ in delivered.values())
    failed = sum(f for _, f in delivered.values())
    per_channel = " ".join(f"{name}={s}/{f}" for name, (s, f) in delivered.items())
    decisions = " ".join(f"{k}={v}" for k, v in sorted(decided.items()))
    summary = (
        f"events={len(docs)} alerts={alerts.height + twap_found.height} new={inserted} sent={sent} failed={failed} "
        f"twap_statuses={len(twap_docs)} twap_slices={len(slices)}"
        + (f" near_liquidation={near_liquidation}" if near_liquidation else "")
        + (f" positions={position_changes}" if position_changes else "")
        + (f" decided: {decisions}" if decisions else "")
        + (f" channels(sent/failed): {per_channel}" if per_channel else " channels: none enabled")
    )
    if docs or twap_docs or slices or near_liquidation or position_changes or decided or sent or failed:
        context.log.info(f"fast_alerts {summary}")
    # The cursor is already recorded (context.update_cursor): a skip keeps it too.
    return dg.SkipReason(summary)


daily_sensors = [late_events_sensor, fast_alert_sensor]
