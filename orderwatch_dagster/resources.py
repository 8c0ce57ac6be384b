"""Resources: the MongoDB the collector writes to, the Parquet data folder, the alert webhook."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pymongo
from pydantic import Field
from pymongo.database import Database

from orderwatch_dagster import tables


class MongoResource(dg.ConfigurableResource):
    """The collector's MongoDB (``MONGO_URI``, ``MONGO_DB``: the collector's own variables)."""

    uri: str = Field(default="mongodb://127.0.0.1:27017", description="MongoDB URI (MONGO_URI)")
    database: str = Field(default="orderwatch", description="database name (MONGO_DB)")

    @contextmanager
    def get_db(self) -> Iterator[Database]:
        """A database handle on a short-lived tz-aware client (datetimes come back in UTC)."""
        client: pymongo.MongoClient = pymongo.MongoClient(self.uri, tz_aware=True, serverSelectionTimeoutMS=10_000)
        try:
            yield client[self.database]
        finally:
            client.close()


class ParquetStore(dg.ConfigurableResource):
    """The data folder (``ORDERWATCH_DATA_DIR``, default ``./data``) holding hive-partitioned
    Parquet: ``<data>/parquet/<table>/date=YYYY-MM-DD/<table>.parquet``."""

    data_dir: str = Field(default="./data", description="data folder (ORDERWATCH_DATA_DIR)")

    def table_dir(self, table: str) -> Path:
        return Path(self.data_dir) / "parquet" / table

    def path(self, table: str, day: str | date) -> Path:
        return self.table_dir(table) / f"date={day}" / f"{table}.parquet"

    def write(self, table: str, day: str | date, df: pl.DataFrame) -> Path:
        """Write a partition atomically: a temporary file in the same folder, then a rename."""
        target = self.path(table, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            df.write_parquet(tmp, compression="zstd", statistics=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def days(self, table: str) -> list[str]:
        """The partitions written so far, oldest first."""
        root = self.table_dir(table)
        if not root.is_dir():
            return []
        return sorted(p.parent.name.removeprefix("date=") for p in root.glob(f"date=*/{table}.parquet"))

    def read(self, table: str, day: str | date) -> pl.DataFrame:
        """One partition."""
        return pl.read_parquet(self.path(table, day))

    def scan_until(self, table: str, day: str | date) -> pl.LazyFrame:
        """Every partition up to and including ``day`` as one lazy frame (no ``date`` column), in
        the table's current schema: columns added since an old partition was written (``dex``,
        the replacement links) read as nulls there, and columns since dropped are ignored."""
        files = [str(self.path(table, d)) for d in self.days(table) if d <= str(day)]
        schema = tables.schema(tables.TABLES[table])
        if not files:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(
            files, hive_partitioning=False, schema=schema, missing_columns="insert", extra_columns="ignore"
        )


class AlertWebhook(dg.ConfigurableResource):
    """Where new alerts are POSTed (``ORDERWATCH_ALERT_WEBHOOK_URL``); empty disables it."""

    url: str = Field(default="", description="webhook URL (ORDERWATCH_ALERT_WEBHOOK_URL)")
    timeout_s: float = 10.0

    def post(self, payload: dict, idempotency_key: str | None = None) -> int:
        """POST ``payload`` as JSON; return the HTTP status (raises on non-2xx or network errors).

        ``idempotency_key`` is sent as ``Idempotency-Key`` (the alertKey) so that a receiver can
        drop the one repeat a crash between a POST and its bookkeeping can cause."""
        headers = {"Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        req = urllib.request.Request(
            self.url,
            data=json.dumps(payload, default=str).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return int(resp.status)


def _env(name: str, default: str) -> str | dg.EnvVar:
    # EnvVar when set (the UI shows where the value comes from), the documented default otherwise.
    return dg.EnvVar(name) if os.environ.get(name) else default


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources configured from the environment, as the code location uses them."""
    return {
        "mongo_db": MongoResource(
            uri=_env("MONGO_URI", "mongodb://127.0.0.1:27017"), database=_env("MONGO_DB", "orderwatch")
        ),
        "store": ParquetStore(data_dir=_env("ORDERWATCH_DATA_DIR", "./data")),
        "webhook": AlertWebhook(url=_env("ORDERWATCH_ALERT_WEBHOOK_URL", "")),
    }
