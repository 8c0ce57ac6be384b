"""Every environment variable the Dagster code location reads: its type, default and meaning.

The values are read where they are used (the resources, the sensors' intervals, the rules files,
the PostgreSQL instance), with the defaults declared here (:func:`default`). This class is their one
list: the documentation's configuration reference (docs/configuration.md) is generated from it, and
``tests/docs/test_docs.py`` fails when the code reads a variable that is not declared here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DagsterSettings(BaseSettings):
    """The Dagster side's environment variables (each is the field's name in upper case)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    mongo_uri: str = Field("mongodb://127.0.0.1:27017", description="The collector's MongoDB (its own variable).")
    mongo_db: str = Field("orderwatch", description="The collector's database name (its own variable).")
    orderwatch_data_dir: str = Field(
        "./data",
        description="The data folder: the Parquet tables go to "
        "`<data>/parquet/<table>/date=YYYY-MM-DD/<table>.parquet` and the reports to `<data>/reports`, "
        "unless `ORDERWATCH_PARQUET_URL` says otherwise.",
    )
    orderwatch_parquet_url: str = Field(
        "",
        description="Where the tables are published: a folder, or `s3://bucket/prefix` for an S3-compatible store "
        "(credentials, region and endpoint from the standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, "
        "`AWS_REGION` and, for a store that is not AWS, `AWS_ENDPOINT_URL`). The daily reports go to `reports` "
        "beside it (`s3://bucket/orderwatch/parquet` -> `s3://bucket/orderwatch/reports`). Empty: "
        "`<ORDERWATCH_DATA_DIR>/parquet`.",
    )
    orderwatch_report_base_url: str = Field(
        "",
        description="URL at which the reports folder is served; when set, each `daily_report` materialization "
        "links to its page there. `make demo` sets it to its report server (`http://127.0.0.1:3100`).",
    )
    dagster_pg_url: str = Field(
        "",
        description="`postgresql://user:password@host:5432/dagster`: Dagster keeps its runs, event logs, schedules "
        "and sensor state in that PostgreSQL (the project's `dagster.yaml` chooses). Empty: SQLite under "
        "`DAGSTER_HOME`. A URL that does not connect stops the webserver, the daemon and every run with one line "
        "naming it (password hidden) and the reason.",
    )
    orderwatch_alert_webhook_url: str = Field(
        "", description="Generic JSON webhook for alerts; empty: that channel is off."
    )
    orderwatch_slack_webhook_url: str = Field("", description="Slack incoming webhook for alerts; empty: off.")
    orderwatch_discord_webhook_url: str = Field("", description="Discord webhook for alerts; empty: off.")
    orderwatch_telegram_bot_token: str = Field(
        "", description="Telegram bot token; with `ORDERWATCH_TELEGRAM_CHAT_ID`, alerts go to that chat."
    )
    orderwatch_telegram_chat_id: str = Field("", description="Telegram chat the bot posts alerts to.")
    orderwatch_telegram_api_url: str = Field(
        "https://api.telegram.org", description="Telegram Bot API base URL (another server for tests)."
    )
    orderwatch_alert_rules: Path | None = Field(
        None,
        description="The alert rules file (thresholds, floor, overrides, cooldown, fill merge window, quiet "
        "hours). Unset: `alert_rules.toml` at the repository root, else the built-in defaults.",
    )
    orderwatch_fast_alert_interval_s: int = Field(30, description="How often `fast_alert_sensor` runs, in seconds.")
    orderwatch_store_margin_s: float = Field(
        30.0,
        description="The sensors' margin on `storedAt`: the longest a written document may take to become readable "
        "plus the clock offset between collector hosts and Dagster.",
    )
    hyperliquid_leaderboard_url: str = Field(
        "https://stats-data.hyperliquid.xyz/Mainnet/leaderboard",
        description="The public leaderboard document the `leaderboard` asset fetches (the simulator serves one at "
        "`http://<sim>/Mainnet/leaderboard`).",
    )
    orderwatch_leaderboard_cron: str = Field(
        "0 * * * *", description="When `leaderboard_schedule` takes a snapshot and makes the selection (UTC cron)."
    )
    orderwatch_selection_rules: Path | None = Field(
        None,
        description="The selection rules file (cohorts, filters, ranking, target size, hysteresis, pins, "
        "excludes). Unset: `trader_selection.toml` at the repository root, else the built-in defaults.",
    )


def default(name: str) -> Any:
    """The declared default of the variable ``name``."""
    return DagsterSettings.model_fields[name.lower()].default


def read(name: str) -> Any:
    """The variable ``name`` from the environment (as text), else its declared default."""
    return os.environ.get(name) or default(name)
