"""Benchmark 5: one day's ``trader_orders`` documents from MongoDB into polars.

The project's reader (:func:`orderwatch_dagster.mongo.read_order_events`: projected ``find``,
``pl.from_dicts`` with the raw schema, normalization) against the plain way
(``list(collection.find())`` then ``pl.DataFrame``), on nx-27017 or the server in ``MONGO_URI``.
The documents are synthetic events (:mod:`benchmarks.events`) stored as the collector stores
them (decimals as strings).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import polars as pl
import pymongo

from benchmarks.events import DAY, events_frame
from benchmarks.measure import mongo_server
from benchmarks.report import Section
from collector_service import schema
from orderwatch_dagster import mongo, tables


def stored_docs(n_events: int) -> list[dict]:
    """Collector-shaped documents for about ``n_events`` events, all on :data:`DAY`."""
    df = events_frame(n_events * 3).filter(pl.col("eventAt").dt.date() == pl.lit(DAY).str.to_date())
    decimals = [c.name for c in tables.ORDER_EVENTS if c.dtype == tables.DECIMAL]
    df = df.drop("eventAt", "notionalUsd").with_columns(
        [pl.col(c).cast(pl.Float64).cast(pl.String) for c in decimals])
    return [{k: v for k, v in d.items() if v is not None} for d in df.to_dicts()]


def run(quick: bool = False) -> Section:
    section = Section("extraction", "5. MongoDB extraction (one day -> polars)")
    n = 5_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp, mongo_server(Path(tmp)) as (uri, nx):
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        db = client[f"ow_bench_x{os.getpid()}"]
        try:
            docs = stored_docs(n)
            coll = db[schema.ORDERS]
            coll.insert_many(docs, ordered=False)
            coll.create_index("observedAt")
            coll.create_index("createdAt")
            best = {"project": float("inf"), "plain": float("inf")}
            rows = {}
            for _ in range(1 if quick else 3):
                started = time.perf_counter()
                rows["project"] = mongo.read_order_events(db, DAY).height
                best["project"] = min(best["project"], time.perf_counter() - started)
                started = time.perf_counter()
                rows["plain"] = pl.DataFrame(list(coll.find()), infer_schema_length=None).height
                best["plain"] = min(best["plain"], time.perf_counter() - started)
            section.add("documents (one day)", f"{len(docs):,}")
            section.add("project method (mongo.read_order_events)", f"{len(docs) / best['project']:,.0f} docs/s")
            section.add("plain list(find()) + DataFrame", f"{len(docs) / best['plain']:,.0f} docs/s")
            section.ratio("project / plain throughput", best["plain"] / best["project"])
            section.checks["all_documents_read"] = rows["project"] == rows["plain"] == len(docs)
            section.notes.append(f"{'MONGO_URI' if nx is None else 'nx-27017'}; best of the runs; the project method "
                                 "also types decimals and sorts (normalize_order_events)")
        finally:
            client.drop_database(db.name)
            client.close()
    return section
