"""Resources: the MongoDB the collector writes to, the Parquet data folder, the alert channels."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pymongo
from pydantic import Field
from pymongo.database import Database

from orderwatch_dagster import leaderboard, tables
from orderwatch_dagster.channels import Channel

TELEGRAM_API_URL = "https://api.telegram.org"
LEADERBOARD_URL = leaderboard.DEFAULT_URL


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


def _replace_atomically(target: Path, fill: Callable[[Path], object]) -> Path:
    """Create ``target`` through ``fill(tmp)`` on a temporary file in the same folder, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        fill(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


class ParquetStore(dg.ConfigurableResource):
    """The data folder (``ORDERWATCH_DATA_DIR``, default ``./data``) holding hive-partitioned
    Parquet: ``<data>/parquet/<table>/date=YYYY-MM-DD/<table>.parquet``."""

    data_dir: str = Field(default="./data", description="data folder (ORDERWATCH_DATA_DIR)")
    report_base_url: str = Field(
        default="",
        description="URL at which <data>/reports is served (ORDERWATCH_REPORT_BASE_URL); empty: no report link",
    )

    def table_dir(self, table: str) -> Path:
        return Path(self.data_dir) / "parquet" / table

    def path(self, table: str, day: str | date) -> Path:
        return self.table_dir(table) / f"date={day}" / f"{table}.parquet"

    def write(self, table: str, day: str | date, df: pl.DataFrame) -> Path:
        """Write a partition atomically (readers see the old file or the new one, never half of one)."""
        return _replace_atomically(
            self.path(table, day), lambda tmp: df.write_parquet(tmp, compression="zstd", statistics=True)
        )

    def snapshot_path(self, table: str, at: datetime) -> Path:
        """A snapshot table's file: ``<data>/parquet/<table>/date=YYYY-MM-DD/<table>-<UTC time>.parquet``
        (several per day, named so that they sort by time)."""
        return self.table_dir(table) / f"date={at:%Y-%m-%d}" / f"{table}-{at:%Y%m%dT%H%M%S%fZ}.parquet"

    def write_snapshot(self, table: str, at: datetime, df: pl.DataFrame) -> Path:
        """Write one snapshot's file atomically; earlier snapshots stay (the history)."""
        return _replace_atomically(
            self.snapshot_path(table, at), lambda tmp: df.write_parquet(tmp, compression="zstd", statistics=True)
        )

    def snapshots(self, table: str) -> list[Path]:
        """A snapshot table's files, oldest first."""
        return sorted(self.table_dir(table).glob(f"date=*/{table}-*.parquet"), key=lambda p: p.name)

    def report_path(self, day: str | date) -> Path:
        """The day's HTML report, beside the Parquet folders: ``<data>/reports/date=YYYY-MM-DD/report.html``."""
        return Path(self.data_dir) / "reports" / f"date={day}" / "report.html"

    def report_url(self, day: str | date) -> str | None:
        """Where the day's report is served, when ``report_base_url`` is set."""
        return f"{self.report_base_url.rstrip('/')}/date={day}/report.html" if self.report_base_url else None

    def write_report(self, day: str | date, page: str) -> Path:
        """Write the day's report atomically, like a partition."""
        return _replace_atomically(self.report_path(day), lambda tmp: tmp.write_text(page, encoding="utf-8"))

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


def _env(name: str, default: str) -> str | dg.EnvVar:
    # EnvVar when set (the UI shows where the value comes from), the documented default otherwise.
    return dg.EnvVar(name) if os.environ.get(name) else default


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources configured from the environment, as the code location uses them."""
    return {
        "mongo_db": MongoResource(
            uri=_env("MONGO_URI", "mongodb://127.0.0.1:27017"), database=_env("MONGO_DB", "orderwatch")
        ),
        "store": ParquetStore(
            data_dir=_env("ORDERWATCH_DATA_DIR", "./data"), report_base_url=_env("ORDERWATCH_REPORT_BASE_URL", "")
        ),
        "leaderboard_source": LeaderboardSource(url=_env("HYPERLIQUID_LEADERBOARD_URL", LEADERBOARD_URL)),
        "alert_channels": AlertChannels(
            webhook_url=_env("ORDERWATCH_ALERT_WEBHOOK_URL", ""),
            slack_webhook_url=_env("ORDERWATCH_SLACK_WEBHOOK_URL", ""),
            discord_webhook_url=_env("ORDERWATCH_DISCORD_WEBHOOK_URL", ""),
            telegram_bot_token=_env("ORDERWATCH_TELEGRAM_BOT_TOKEN", ""),
            telegram_chat_id=_env("ORDERWATCH_TELEGRAM_CHAT_ID", ""),
            telegram_api_url=_env("ORDERWATCH_TELEGRAM_API_URL", TELEGRAM_API_URL),
        ),
    }
