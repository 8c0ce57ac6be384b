"""Resources: the MongoDB the collector writes to, the Parquet tables (a folder or a bucket), the alert channels."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import pymongo
from pydantic import Field
from pymongo.database import Database

from orderwatch_dagster import leaderboard, settings, storage, tables
from orderwatch_dagster.channels import Channel

TELEGRAM_API_URL = settings.default("ORDERWATCH_TELEGRAM_API_URL")
LEADERBOARD_URL = settings.default("HYPERLIQUID_LEADERBOARD_URL")


SNAPSHOT_MAX_AGE = timedelta(days=1)
"""A snapshot older than this at a day's end is not used for that day (the scorecards' leaderboard check,
the report's cohorts)."""


def snapshot_at(path: str) -> datetime:
    """The time in a snapshot file's name, ``<table>-YYYYmmddTHHMMSSffffffZ.parquet``."""
    stamp = path.rsplit("-", 1)[-1].removesuffix(".parquet")
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


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
    """The hive-partitioned Parquet tables, ``<root>/<table>/date=YYYY-MM-DD/<table>.parquet``, and the
    daily reports beside them (``<root>/../reports``), on local disk or an S3-compatible store.

    ``<root>`` is ``parquet_url`` (``ORDERWATCH_PARQUET_URL``: a local folder or ``s3://bucket/prefix``),
    by default ``<data_dir>/parquet`` (``ORDERWATCH_DATA_DIR``, default ``./data``). Every table goes
    through :meth:`publish`, which writes one whole Parquet object atomically (:mod:`.storage`)."""

    data_dir: str = Field(default="./data", description="data folder (ORDERWATCH_DATA_DIR)")
    parquet_url: str = Field(
        default="",
        description="where the tables go (ORDERWATCH_PARQUET_URL): a folder or s3://bucket/prefix; "
        "empty: <data_dir>/parquet",
    )
    report_base_url: str = Field(
        default="",
        description="URL at which the reports folder is served (ORDERWATCH_REPORT_BASE_URL); empty: no report link",
    )

    def tables(self) -> storage.Storage:
        """The tables' root."""
        return storage.at(self.parquet_url or f"{self.data_dir.rstrip('/')}/parquet")

    def reports(self) -> storage.Storage:
        """The reports' root: ``reports`` beside the tables' root."""
        return storage.at(storage.sibling(self.tables().root_url, "reports"))

    @staticmethod
    def key(table: str, day: str | date) -> str:
        return f"{table}/date={day}/{table}.parquet"

    def path(self, table: str, day: str | date) -> str:
        """A partition's path or ``s3://`` URL."""
        return self.tables().url(self.key(table, day))

    def exists(self, table: str, day: str | date) -> bool:
        return self.tables().exists(self.key(table, day))

    def publish(self, key: str, df: pl.DataFrame) -> str:
        """Write ``df`` as one Parquet object at ``key`` (under the tables' root) atomically: readers
        see the old object or the new one, never half of one. Returns its path or URL."""
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True)
        return self.tables().put(key, buf.getvalue())

    def write(self, table: str, day: str | date, df: pl.DataFrame) -> str:
        """Publish a daily partition."""
        return self.publish(self.key(table, day), df)

    def report_path(self, day: str | date) -> str:
        """The day's HTML report, beside the tables: ``<root>/../reports/date=YYYY-MM-DD/report.html``."""
        return self.reports().url(f"date={day}/report.html")

    def write_snapshot(self, table: str, at: datetime, df: pl.DataFrame) -> str:
        """Publish one snapshot of a snapshot table, ``<table>/date=YYYY-MM-DD/<table>-<UTC time>.parquet``
        (several per day, named so that they sort by time); earlier snapshots stay (the history)."""
        return self.publish(f"{table}/date={at:%Y-%m-%d}/{table}-{at:%Y%m%dT%H%M%S%fZ}.parquet", df)

    def snapshots(self, table: str) -> list[str]:
        """A snapshot table's files (paths or URLs), oldest first."""
        keys = [k for k in self.tables().keys(table) if k.rsplit("/", 1)[-1].startswith(f"{table}-")]
        return [self.tables().url(k) for k in sorted(keys, key=lambda k: k.rsplit("/", 1)[-1])]

    def latest_snapshot(self, table: str, until: datetime, max_age: timedelta = SNAPSHOT_MAX_AGE) -> str | None:
        """The newest snapshot of ``table`` taken in ``[until - max_age, until]``, or None."""
        near = [p for p in self.snapshots(table) if until - max_age <= snapshot_at(p) <= until]
        return near[-1] if near else None

    def report_url(self, day: str | date) -> str | None:
        """Where the day's report is served, when ``report_base_url`` is set."""
        return f"{self.report_base_url.rstrip('/')}/date={day}/report.html" if self.report_base_url else None

    def write_report(self, day: str | date, page: str) -> str:
        """Publish the day's report atomically, like a partition."""
        return self.reports().put(f"date={day}/report.html", page.encode())

    def days(self, table: str) -> list[str]:
        """The partitions written so far, oldest first."""
        suffix = f"/{table}.parquet"
        keys = self.tables().keys(table)
        return sorted(k.split("/")[1].removeprefix("date=") for k in keys if k.endswith(suffix) and k.count("/") == 2)

    def read(self, table: str, day: str | date) -> pl.DataFrame:
        """One partition."""
        return pl.read_parquet(self.path(table, day))

    def scan_until(self, table: str, day: str | date, *, partition_day: str | None = None) -> pl.LazyFrame:
        """Every partition up to and including ``day`` as one lazy frame (no ``date`` column), in
        the table's current schema: columns added since an old partition was written (``dex``,
        the replacement links) read as nulls there, and columns since dropped are ignored.
        ``partition_day``: add a ``pl.Date`` column of that name holding each row's partition day
        (for snapshot-like tables whose rows repeat day after day)."""
        files = [self.path(table, d) for d in self.days(table) if d <= str(day)]
        schema = tables.schema(tables.TABLES[table])
        if not files:
            extra = {partition_day: pl.Date()} if partition_day else {}
            return pl.LazyFrame(schema=pl.Schema({**schema, **extra}))
        lf = pl.scan_parquet(
            files,
            hive_partitioning=False,
            schema=schema,
            missing_columns="insert",
            extra_columns="ignore",
            include_file_paths=partition_day,
        )
        if partition_day:
            lf = lf.with_columns(
                pl.col(partition_day).str.extract(r"date=(\d{4}-\d{2}-\d{2})", 1).str.to_date("%Y-%m-%d")
            )
        return lf


class LeaderboardSource(dg.ConfigurableResource):
    """Where the public leaderboard document is fetched (``HYPERLIQUID_LEADERBOARD_URL``)."""

    url: str = Field(default=LEADERBOARD_URL, description="leaderboard document URL (HYPERLIQUID_LEADERBOARD_URL)")
    timeout_s: float = Field(default=60.0, description="socket time-out in seconds")

    def fetch(self) -> bytes:
        return leaderboard.fetch(self.url, self.timeout_s)


class AlertChannels(dg.ConfigurableResource):
    """Where alerts are delivered; each channel is on when its variables are set (secrets come only
    from the environment and are redacted from every stored or logged error).

    ``webhook_url`` (``ORDERWATCH_ALERT_WEBHOOK_URL``): generic JSON webhook; ``slack_webhook_url``
    (``ORDERWATCH_SLACK_WEBHOOK_URL``); ``discord_webhook_url`` (``ORDERWATCH_DISCORD_WEBHOOK_URL``);
    ``telegram_bot_token`` + ``telegram_chat_id`` (``ORDERWATCH_TELEGRAM_BOT_TOKEN``,
    ``ORDERWATCH_TELEGRAM_CHAT_ID``) at ``telegram_api_url`` (``ORDERWATCH_TELEGRAM_API_URL``).
    """

    webhook_url: str = Field(default="", description="generic JSON webhook (ORDERWATCH_ALERT_WEBHOOK_URL)")
    slack_webhook_url: str = Field(default="", description="Slack incoming webhook (ORDERWATCH_SLACK_WEBHOOK_URL)")
    discord_webhook_url: str = Field(default="", description="Discord webhook (ORDERWATCH_DISCORD_WEBHOOK_URL)")
    telegram_bot_token: str = Field(default="", description="Telegram bot token (ORDERWATCH_TELEGRAM_BOT_TOKEN)")
    telegram_chat_id: str = Field(default="", description="Telegram chat id (ORDERWATCH_TELEGRAM_CHAT_ID)")
    telegram_api_url: str = Field(
        default=TELEGRAM_API_URL, description="Telegram Bot API base URL (ORDERWATCH_TELEGRAM_API_URL)"
    )
    timeout_s: float = 10.0

    def channels(self) -> list[Channel]:
        """The enabled channels, in delivery order; each knows every secret so that it can redact them all."""
        urls = (self.webhook_url, self.slack_webhook_url, self.discord_webhook_url)
        secrets = tuple(s for s in (*urls, self.telegram_bot_token) if s)
        out = [
            Channel(name, url, secrets, timeout_s=self.timeout_s)
            for name, url in (
                ("webhook", self.webhook_url),
                ("slack", self.slack_webhook_url),
                ("discord", self.discord_webhook_url),
            )
            if url
        ]
        if self.telegram_bot_token and self.telegram_chat_id:
            url = f"{self.telegram_api_url.rstrip('/')}/bot{self.telegram_bot_token}/sendMessage"
            out.append(Channel("telegram", url, secrets, chat_id=self.telegram_chat_id, timeout_s=self.timeout_s))
        return out


def _env(name: str) -> str | dg.EnvVar:
    # EnvVar when set (the UI shows where the value comes from), the declared default otherwise.
    return dg.EnvVar(name) if os.environ.get(name) else settings.default(name)


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources configured from the environment, as the code location uses them."""
    return {
        "mongo_db": MongoResource(uri=_env("MONGO_URI"), database=_env("MONGO_DB")),
        "store": ParquetStore(
            data_dir=_env("ORDERWATCH_DATA_DIR"),
            parquet_url=_env("ORDERWATCH_PARQUET_URL"),
            report_base_url=_env("ORDERWATCH_REPORT_BASE_URL"),
        ),
        "leaderboard_source": LeaderboardSource(url=_env("HYPERLIQUID_LEADERBOARD_URL")),
        "alert_channels": AlertChannels(
            webhook_url=_env("ORDERWATCH_ALERT_WEBHOOK_URL"),
            slack_webhook_url=_env("ORDERWATCH_SLACK_WEBHOOK_URL"),
            discord_webhook_url=_env("ORDERWATCH_DISCORD_WEBHOOK_URL"),
            telegram_bot_token=_env("ORDERWATCH_TELEGRAM_BOT_TOKEN"),
            telegram_chat_id=_env("ORDERWATCH_TELEGRAM_CHAT_ID"),
            telegram_api_url=_env("ORDERWATCH_TELEGRAM_API_URL"),
        ),
    }
