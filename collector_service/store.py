"""MongoDB: indexes, start-up state, and the batch writer fed through the on-disk journal.

Operations are tuples of a kind and a document:

* ``order``    a ``trader_orders`` event; also moves the order's row in ``trader_open_orders``
* ``position`` a ``trader_positions`` document
* ``account``  a ``trader_accounts`` document (an account sample; replaces one of the same
  trader, dex and exchange time)
* ``mark``     a ``market_marks`` document (a coin's latest mark price; replaces the stored one)
* ``fill``     a ``trader_fills`` document
* ``twap``     a ``trader_twaps`` document
* ``watch``    a ``trader_watchlist`` document (a trader's label and tags)
* ``final``    ``{ethAddress, oid, finalStatus, statusTimestamp}``: the outcome of a closed order
  that was stored before the exchange told us how it ended; an outcome other than ``canceled``
  also checks a replacement link of that order: one whose old order did not end cancelled, or,
  inferred without a cloid, whose replacement was not placed when it was cancelled, is removed
* ``link``     ``{ethAddress, oid, replacedByOid, replaceMatch}``: a replacement found after one of
  its events was stored; each half is written where it is still missing
* ``gap`` / ``gap_recovered``  ``{_id: ethAddress, since}``: a gap to recover over REST opens /
  closes in ``collector_recoveries``
* ``node_checkpoint``  a ``node_checkpoints`` document: how far a node stream was read; written
  last in its batch, so it is stored only once every operation journaled before it is

Writing is idempotent (unique indexes; duplicate-key errors count as already written), so a
batch that failed half-way is simply written again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from collector_service import exchange, schema
from collector_service.aio import wait_event
from collector_service.config import Trader, mask_uri
from collector_service.journal import Journal
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats

log = logging.getLogger(__name__)

Op = dict[str, Any]
"""``{"kind": "order"|"position"|"final", "doc": {...}}``"""


def _utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (a client without tz_aware reads naive UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def connect(uri: str, timeout_ms: int = 5000) -> pymongo.MongoClient:
    """A client with aware UTC datetimes and short timeouts (outages are handled by retrying)."""
    return pymongo.MongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, 30_000),
        appname="orderwatch-collector",
    )


def describe_error(exc: BaseException, uri: str) -> str:
    """An exception as one line, with any credentials of ``uri`` masked."""
    text = f"{type(exc).__name__}: {exc}"
    masked = mask_uri(uri)
    return text.replace(uri, masked) if uri != masked else text


def ensure_indexes(db: pymongo.database.Database) -> None:
    """Create every index of the stored schema (idempotent)."""
    for collection, specs in schema.INDEXES.items():
        for keys, unique in specs:
            db[collection].create_index(list(keys), unique=unique)


def insert_idempotent(collection: pymongo.collection.Collection, docs: list[dict[str, Any]]) -> set[int]:
    """Insert documents unordered, each stamped ``storedAt`` (now: a retried batch is stamped
    again; a duplicate keeps the stamp it was first stored with); return the indexes MongoDB
    already had (duplicate keys).

    Any other write error is raised, so the whole batch is retried later.
    """
    if not docs:
        return set()
    stored_at = datetime.now(UTC)
    try:
        # insert_many adds _id to what it is given; hand it copies so a retry starts clean
        collection.insert_many([{**d, "storedAt": stored_at} for d in docs], ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(err.get("code") != schema.DUPLICATE_KEY_ERROR for err in errors):
            raise
        return {int(err["index"]) for err in errors}
    return set()


class Database:
    """Synchronous MongoDB access for the collector (run it in a worker thread)."""

    def __init__(self, uri: str, name: str) -> None:
        self.uri = uri
        self.client = connect(uri)
        self.db = self.client[name]

    def ensure_indexes(self) -> bool:
        ensure_indexes(self.db)
        return True

    def open_orders(self, users: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Stored open orders by trader: what a restarted collector reconciles against."""
        found: dict[str, list[dict[str, Any]]] = {}
        for doc in self.db[schema.OPEN_ORDERS].find({"ethAddress": {"$in": list(users)}}):
            found.setdefault(doc["ethAddress"], []).append(doc)
        return found

    def latest_positions(self, user: str) -> list[dict[str, Any]]:
        """A trader's position documents, newest first (the first per coin is current)."""
        return list(
            self.db[schema.POSITIONS].find({"ethAddress": user}).sort("serverTime", pymongo.DESCENDING).limit(2000)
        )

    def last_seen(self, users: Iterable[str]) -> dict[str, datetime]:
        """When each trader's newest stored event was observed (the start of a restart's gap)."""
        found = {}
        for user in users:
            doc = self.db[schema.ORDERS].find_one(
                {"ethAddress": user}, {"observedAt": 1}, sort=[("observedAt", pymongo.DESCENDING)]
            )
            if doc is not None and isinstance(doc.get("observedAt"), datetime):
                found[user] = doc["observedAt"]
        return found

    def newest_fills(self, users: Iterable[str]) -> dict[str, datetime]:
        """The time of each trader's newest stored fill."""
        found = {}
        for user in users:
            doc = self.db[schema.FILLS].find_one({"ethAddress": user}, {"time": 1}, sort=[("time", pymongo.DESCENDING)])
            if doc is not None and isinstance(doc.get("time"), datetime):
                found[user] = doc["time"]
        return found

    def pending_recoveries(self, users: Iterable[str]) -> dict[str, datetime | None]:
        """Gaps a previous run had not recovered yet, by trader: when each began."""
        return {doc["_id"]: doc.get("since") for doc in self.db[schema.RECOVERIES].find({"_id": {"$in": list(users)}})}

    def node_checkpoints(self) -> dict[str, dict[str, Any]]:
        """Where each node stream was read up to, by stream (``order_statuses``, ``fills``)."""
        return {doc["_id"]: doc for doc in self.db[schema.NODE_CHECKPOINTS].find()}

    def node_waiting(self) -> list[dict[str, Any]]:
        """Node lines read for resyncing traders and not applied yet, in the order they were read."""
        return list(self.db[schema.NODE_WAITING].find().sort("readAt", pymongo.ASCENDING))

    def unresolved_closes(self, users: Iterable[str]) -> list[tuple[str, int]]:
        """Closed events still waiting for the exchange's final status."""
        cursor = self.db[schema.ORDERS].find(
            {"action": schema.ACTION_CLOSED, "finalStatus": schema.FINAL_STATUS_UNKNOWN,
             "ethAddress": {"$in": list(users)}},
            {"ethAddress": 1, "oid": 1},
        )
        return [(doc["ethAddress"], int(doc["oid"])) for doc in cursor]

    def write(self, ops: list[Op], stats: Stats) -> None:
        """Write a batch of operations idempotently; raise on anything but duplicates."""
        orders = [op["doc"] for op in ops if op["kind"] == "order"]
        positions = [op["doc"] for op in ops if op["kind"] == "position"]
        finals = [op["doc"] for op in ops if op["kind"] == "final"]
        if orders:
            duplicates = insert_idempotent(self.db[schema.ORDERS], orders)
            inserted = [doc for i, doc in enumerate(orders) if i not in duplicates]
            behind = self._rows_behind([orders[i] for i in duplicates])
            moved = [doc for i, doc in enumerate(orders) if i not in duplicates or id(doc) in behind]
            if moved:
                # an order whose new event was stored just now has no row yet (rows follow events)
                born = {schema.open_order_id(d["ethAddress"], d["oid"]) for d in inserted
                        if d["action"] == schema.ACTION_NEW}
                _move_open_orders(self.db[schema.OPEN_ORDERS], moved, born)
            stats.events_duplicate += len(duplicates)
            for doc in inserted:
                stats.events_written[doc["action"]] += 1
        if positions:
            duplicates = insert_idempotent(self.db[schema.POSITIONS], positions)
            stats.positions_written += len(positions) - len(duplicates)
        for op in ops:  # in order, replacing: a later state of the same exchange time wins (events.accounts)
            if op["kind"] == "account":
                doc = op["doc"]
                key = schema.account_id(doc["ethAddress"], doc["dex"], doc["serverTime"])
                try:
                    self.db[schema.ACCOUNTS].replace_one(
                        {"_id": key}, {**doc, "_id": key, "storedAt": datetime.now(UTC)}, upsert=True
                    )
                except DuplicateKeyError:  # stored by an older version under another _id: that sample stays
                    continue
                stats.accounts_written += 1
        marks = {op["doc"]["_id"]: op["doc"] for op in ops if op["kind"] == "mark"}  # the newest per coin
        for doc in marks.values():  # a whole-document replace: nx-27017 stores $set datetimes as text
            self.db[schema.MARKS].replace_one({"_id": doc["_id"]}, doc, upsert=True)
        stats.marks_written += len(marks)
        fills = [op["doc"] for op in ops if op["kind"] == "fill"]
        if fills:
            duplicates = insert_idempotent(self.db[schema.FILLS], fills)
            stats.fills_written += len(fills) - len(duplicates)
            stats.fills_duplicate += len(duplicates)
        twaps = [op["doc"] for op in ops if op["kind"] == "twap"]
        if twaps:
            duplicates = insert_idempotent(self.db[schema.TWAPS], twaps)
            stats.twaps_written += len(twaps) - len(duplicates)
        for op in ops:
            if op["kind"] == "link":
                self._link(op["doc"])
        for doc in finals:
            # read and replace rather than $set: nx-27017 stores a datetime given to $set on an
            # existing document as text, which broke reading statusTimestamp as a time
            closed = self._event(doc["ethAddress"], doc["oid"], schema.ACTION_CLOSED)
            if closed is not None:
                closed.update(finalStatus=doc["finalStatus"], statusTimestamp=doc["statusTimestamp"])
                if closed.get("replacedByOid") is not None:
                    self._check_link(closed)
                self.db[schema.ORDERS].replace_one({"_id": closed["_id"]}, closed)
            stats.final_statuses_resolved += 1
        self._watch([op["doc"] for op in ops if op["kind"] == "watch"])
        for op in ops:
            if op["kind"] == "uncovered":  # keyed by trader and start: a replay writes it once
                self.db[schema.UNCOVERED].replace_one({"_id": op["doc"]["_id"]}, op["doc"], upsert=True)
            if op["kind"] == "node_waiting":  # in order: a trader's lines, then their removal
                self.db[schema.NODE_WAITING].replace_one({"_id": op["doc"]["_id"]}, op["doc"], upsert=True)
            if op["kind"] == "node_waiting_done":
                self.db[schema.NODE_WAITING].delete_many({"user": op["doc"]["user"]})
            if op["kind"] in ("gap", "gap_recovered"):
                # delete + insert, not an upsert with $set: nx-27017 stores $set datetimes as text
                self.db[schema.RECOVERIES].delete_one({"_id": op["doc"]["_id"]})
                if op["kind"] == "gap":
                    self.db[schema.RECOVERIES].insert_one(dict(op["doc"]))
        checkpoints = {op["doc"]["_id"]: op["doc"] for op in ops if op["kind"] == "node_checkpoint"}
        if checkpoints:  # the newest of the batch per stream, after everything else, in one command
            self.db[schema.NODE_CHECKPOINTS].bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in checkpoints.values()]
            )

    def listed(self) -> list[dict[str, Any]]:
        """The pins and the selection Dagster wrote into ``trader_watchlist``."""
        return list(self.db[schema.WATCHLIST].find({"origin": {"$in": list(schema.LISTED_ORIGINS)}}))

    def _watch(self, docs: list[dict[str, Any]]) -> None:
        """Record manual entries, in order (whole-document replaces: nx-27017 stores $set
        datetimes as text). One still on the file takes its address over from a pin or selection
        document; one taken off it leaves an address Dagster lists alone (schema.WATCHLIST).

        Entries of distinct addresses go in one unordered bulk write (a start with 1,000 traders
        made 1,000 round trips); an address met again starts the next one, to keep its order."""
        batch: dict[str, ReplaceOne[dict[str, Any]]] = {}
        for doc in [*docs, None]:
            if batch and (doc is None or doc["_id"] in batch):
                try:
                    self.db[schema.WATCHLIST].bulk_write(list(batch.values()), ordered=False)
                except BulkWriteError as exc:  # an upsert that met Dagster's document: it stays
                    if any(err.get("code") != schema.DUPLICATE_KEY_ERROR for err in exc.details["writeErrors"]):
                        raise
                batch = {}
            if doc is not None:
                owned = {"_id": doc["_id"]} if doc["watching"] else {"_id": doc["_id"], **schema.MANUAL_OWNED}
                batch[doc["_id"]] = ReplaceOne(owned, doc, upsert=True)

    def _event(self, user: str, oid: int, event_key: str) -> dict[str, Any] | None:
        return self.db[schema.ORDERS].find_one({"ethAddress": user, "oid": oid, "eventKey": event_key})

    def _link(self, doc: Mapping[str, Any]) -> None:
        """Write both halves of a replacement link found in the exchange's order history.

        It overrides a link the snapshots inferred: across a gap a snapshot can show an order
        replaced twice as replaced once (A gone, C there; B lived inside the gap), while the
        history, with its cloids and times, names each step.
        """
        user, old, new, match = doc["ethAddress"], doc["oid"], doc["replacedByOid"], doc["replaceMatch"]
        now = datetime.now(UTC)
        halves = ((schema.ACTION_CLOSED, old, "replacedByOid", new, schema.ACTION_NEW, "replacesOid"),
                  (schema.ACTION_NEW, new, "replacesOid", old, schema.ACTION_CLOSED, "replacedByOid"))
        for event_key, oid, field, value, other_key, other_field in halves:
            event = self._event(user, oid, event_key)
            if event is None or (event.get(field), event.get("replaceMatch")) == (value, match):
                continue
            previous = event.get(field)
            if previous is not None and previous != value:
                # the half this link replaces pointed back here: it is no longer linked
                stale = self._event(user, previous, other_key)
                if stale is not None and stale.get(other_field) == oid:
                    for key in (other_field, "replaceMatch"):
                        stale.pop(key, None)
                    stale["linkedAt"] = now
                    self.db[schema.ORDERS].replace_one({"_id": stale["_id"]}, stale)
            event.update({field: value, "replaceMatch": match, "linkedAt": now})
            self.db[schema.ORDERS].replace_one({"_id": event["_id"]}, event)

    def _check_link(self, closed: dict[str, Any]) -> None:
        """Keep a replacement link only if the exchange's outcome bears it out: the old order
        ended ``canceled``, and for a link inferred without a cloid, the replacement was placed
        when it was cancelled. Otherwise drop it from both events (the caller replaces
        ``closed``)."""
        placed = self._event(closed["ethAddress"], closed["replacedByOid"], schema.ACTION_NEW)
        ok = closed["finalStatus"] == schema.FINAL_STATUS_CANCELED
        if ok and closed.get("replaceMatch") == schema.MATCH_INFERRED and placed is not None:
            apart = abs(_utc(placed["timestamp"]) - _utc(closed["statusTimestamp"]))
            ok = apart.total_seconds() * 1000 <= exchange.INFERRED_REPLACE_WINDOW_MS
        if ok:
            return
        log.info("event=link_dropped user=%s oid=%s replacedByOid=%s finalStatus=%s match=%s",
                 closed["ethAddress"], closed["oid"], closed["replacedByOid"], closed["finalStatus"],
                 closed.get("replaceMatch"))
        for key in ("replacedByOid", "replaceMatch", "linkedAt"):
            closed.pop(key, None)
        if placed is not None and placed.get("replacesOid") == closed["oid"]:
            for key in ("replacesOid", "replaceMatch", "linkedAt"):
                placed.pop(key, None)
            self.db[schema.ORDERS].replace_one({"_id": placed["_id"]}, placed)

    def _rows_behind(self, replayed: list[dict[str, Any]]) -> set[int]:
        """The replayed (duplicate) events that must still move their open-order row, by ``id``.

        A replayed close always does. A replayed new/updated does only when the row is missing
        or older (a crash between the event insert and the row write); otherwise it would roll
        the row back to an older state.
        """
        keys = [schema.open_order_id(d["ethAddress"], d["oid"]) for d in replayed
                if d["action"] != schema.ACTION_CLOSED]
        rows: dict[str, int] = {}
        if keys:
            for row in self.db[schema.OPEN_ORDERS].find({"_id": {"$in": keys}}, {"seq": 1}):
                rows[row["_id"]] = int(row.get("seq", -1))
        return {
            id(d) for d in replayed
            if d["action"] == schema.ACTION_CLOSED
            or rows.get(schema.open_order_id(d["ethAddress"], d["oid"]), -1) < int(d["seq"])
        }

    def close(self) -> None:
        self.client.close()


def _move_open_orders(collection: pymongo.collection.Collection, orders: list[dict[str, Any]], born: set[str]) -> None:
    """Make each order's row in ``trader_open_orders`` match its last event in the batch; the
    orders ``born`` (row ids) have no row yet.

    Rows are replaced by delete + insert rather than ``$set``: nx-27017 stores a datetime given
    to ``$set`` on an existing document as text, which broke reading the row back at restart.
    Only rows that may exist are deleted: most orders of a batch are born in it, and deleting
    their ids took 14 % of the node source's write time.
    """
    latest = {schema.open_order_id(doc["ethAddress"], doc["oid"]): doc for doc in orders}
    stale = [key for key in latest if key not in born]
    if stale:
        collection.delete_many({"_id": {"$in": stale}})
    rows = [
        {**{k: v for k, v in doc.items() if k not in ("_id", "changes", "prevSz", "prevLimitPx")}, "_id": key}
        for key, doc in latest.items()
        if doc["action"] != schema.ACTION_CLOSED
    ]
    if rows:
        collection.insert_many(rows)


WRITE_BATCH_OPS = 2000
"""A journal segment is written in batches of at most this many operations (in journal order, so a
checkpoint is still stored after everything journaled before it). A writer behind a burst found
segments of 60,000 operations whose single write outlasted the socket timeout against nx-27017
(~2,000 documents/s) and was retried whole, over and over; a batch also becomes readable sooner."""


class Writer:
    """Batches operations to MongoDB every flush interval, or early when enough are waiting.

    ``submit`` appends to the journal and returns at once; ingestion never waits for MongoDB.
    When a write fails the segment stays on disk and is retried with backoff, so an outage of
    any length costs disk space, not events or memory.
    """

    def __init__(
        self,
        database: Database,
        journal: Journal,
        stats: Stats,
        *,
        flush_interval: float,
        flush_threshold: int,
    ) -> None:
        self.database = database
        self.journal = journal
        self.stats = stats
        self.flush_interval = flush_interval
        self.flush_threshold = flush_threshold
        self.pending_ops = sum(1 for path in journal.sealed() for _ in Journal.read(path))
        self._wake = asyncio.Event()
        self._errors = RateLimitedLog(log, interval=30.0)
        self._backoff = 0.0
        self.last_flush_ok = True
        self._flushing = asyncio.Lock()  # a trader added back flushes too (Service._join)

    def submit(self, ops: list[Op]) -> None:
        """Record operations durably and schedule them for writing."""
        if not ops:
            return
        now = datetime.now(UTC)
        for op in ops:
            if op["kind"] in ("order", "position", "fill", "twap", "account"):
                op["doc"].setdefault("createdAt", now)
            if op["kind"] == "order":
                self.stats.events_built[op["doc"]["action"]] += 1
        self.journal.append(ops)
        self.pending_ops += len(ops)
        if self.journal.ops_in_current >= self.flush_threshold:
            self._wake.set()

    async def run(self) -> None:
        """Flush forever (cancel to stop; call :meth:`drain` afterwards).

        Flushes start every ``flush_interval`` (plus the backoff after a failure), counted from
        the start of the previous one, not from its end: an operation waits at most one interval
        for its flush however long writing takes; a write longer than the interval is followed
        by the next at once.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            timeout = started + self.flush_interval + self._backoff - loop.time()
            if timeout > 0:
                await wait_event(self._wake, timeout)
            self._wake.clear()
            started = loop.time()
            await self.flush()

    async def flush(self) -> bool:
        """Write every sealed segment plus the current one; True when nothing is left."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        self.journal.rotate()
        for path in self.journal.sealed():
            ops = list(Journal.read(path))
            started = time.monotonic()
            try:
                for at in range(0, len(ops), WRITE_BATCH_OPS):
                    await asyncio.to_thread(self.database.write, ops[at : at + WRITE_BATCH_OPS], self.stats)
            except Exception as exc:  # any failure: keep the segment on disk, retry later
                self.stats.flush_errors += 1
                self.last_flush_ok = False
                self._backoff = min(30.0, max(1.0, self._backoff * 2)) * random.uniform(0.8, 1.2)
                self._errors.log(
                    logging.ERROR, "flush",
                    "event=flush_failed pending_ops=%d retry_in_s=%.1f error=%r "
                    "hint=%r",
                    self.pending_ops, self.flush_interval + self._backoff,
                    describe_error(exc, self.database.uri),
                    "events are kept on disk in the journal and written when MongoDB accepts them",
                )
                return False
            Journal.remove(path)
            self.last_flush_ok = True
            self.pending_ops = max(0, self.pending_ops - len(ops))
            self.stats.flushes += 1
            self._backoff = 0.0
            orders = sum(1 for op in ops if op["kind"] == "order")
            log.info(
                "Flushed %d order updates to database event=flush ops=%d segment=%s took_ms=%.0f",
                orders, len(ops), path.name, (time.monotonic() - started) * 1000,
            )
        return True

    async def drain(self, deadline_s: float) -> bool:
        """Flush until everything is written or ``deadline_s`` passes (shutdown)."""
        stop_at = time.monotonic() + deadline_s
        while True:
            if await self.flush():
                return True
            if time.monotonic() >= stop_at:
                log.warning(
                    "event=shutdown_unflushed pending_ops=%d folder=%s "
                    "note='kept on disk; written at the next start'",
                    self.pending_ops, self.journal.folder,
                )
                return False
            await asyncio.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))


def journal_folder(data_dir: Path, shard_index: int) -> Path:
    """Each shard instance keeps its own journal."""
    return data_dir / f"journal-shard{shard_index}"


def final_op(user: str, oid: int, status: str, status_ms: int) -> Op:
    """The operation recording a closed order's outcome."""
    return {"kind": "final", "doc": {"ethAddress": user, "oid": oid, "finalStatus": status,
                                     "statusTimestamp": datetime.fromtimestamp(status_ms / 1000, UTC)}}


def link_op(user: str, old_oid: int, new_oid: int, match: str) -> Op:
    """The operation recording that ``new_oid`` replaced ``old_oid``."""
    return {"kind": "link", "doc": {"ethAddress": user, "oid": old_oid, "replacedByOid": new_oid,
                                    "replaceMatch": match}}


def order_ops(docs: Iterable[Mapping[str, Any]]) -> list[Op]:
    return [{"kind": "order", "doc": doc} for doc in docs]


def watch_ops(traders: Iterable[Trader], *, watching: bool) -> list[Op]:
    """The operations recording the manual entries of the watch list (and whether they are still
    on it); pins and selections are Dagster's to write."""
    now = datetime.now(UTC)
    return [{"kind": "watch", "doc": {"_id": t.address, "ethAddress": t.address, "label": t.label,
                                      "tags": list(t.tags), "origin": schema.ORIGIN_MANUAL,
                                      "watching": watching, "updatedAt": now}}
            for t in traders if t.origin == schema.ORIGIN_MANUAL]


def fill_ops(docs: Iterable[Mapping[str, Any]]) -> list[Op]:
    return [{"kind": "fill", "doc": doc} for doc in docs]


def twap_ops(docs: Iterable[Mapping[str, Any]]) -> list[Op]:
    return [{"kind": "twap", "doc": doc} for doc in docs]


def position_ops(docs: Iterable[Mapping[str, Any]]) -> list[Op]:
    return [{"kind": "position", "doc": doc} for doc in docs]


def account_ops(docs: Iterable[Mapping[str, Any]]) -> list[Op]:
    return [{"kind": "account", "doc": doc} for doc in docs]


def mark_ops(docs: Iterable[Mapping[str, Any]]) -> list[Op]:
    return [{"kind": "mark", "doc": doc} for doc in docs]
