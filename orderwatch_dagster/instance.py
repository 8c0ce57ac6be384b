"""Dagster's storage for runs, event logs and schedules, chosen by one setting: PostgreSQL at
``DAGSTER_PG_URL`` when it is set (production), else SQLite files under ``base_dir`` (the demo).

The project's ``dagster.yaml`` names :class:`OrderwatchStorage` in its ``storage: custom:`` block, so
the same file serves both; Dagster loads it in the webserver, the daemon and every run it launches.
It only chooses: it hands back Dagster's own ``DagsterPostgresStorage`` or ``DagsterSqliteStorage``.
What Dagster passes on to the runs it launches names this class and ``DAGSTER_HOME``, never the URL,
so a run chooses the same way from the environment it inherits.
"""

from __future__ import annotations

import os

import dagster as dg
import psycopg2
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PG_URL_VAR = "DAGSTER_PG_URL"
CONNECT_TIMEOUT_S = 10
DRIVER = "postgresql+psycopg2"
"""dagster-postgres's statements need psycopg2 (SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql://)."""


class StorageUnreachable(Exception):
    """``DAGSTER_PG_URL`` is set but no PostgreSQL answers there with those credentials."""


def postgres_url(url: str) -> str:
    """Connect once, so that a wrong URL stops the process with one clear line (password hidden);
    returns the URL for SQLAlchemy with the psycopg2 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # not even a URL: say so without echoing it (it may hold a password)
        raise StorageUnreachable(f"{PG_URL_VAR} is not a URL (postgresql://user:password@host:5432/db)") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        psycopg2.connect(
            parsed.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=CONNECT_TIMEOUT_S
        ).close()
    except psycopg2.Error as e:
        reason = " ".join(str(e).split())
        raise StorageUnreachable(
            f"{PG_URL_VAR}={shown}: cannot use this PostgreSQL for Dagster's storage: {reason}"
        ) from e
    return parsed.set(drivername=DRIVER).render_as_string(hide_password=False)


class OrderwatchStorage(DagsterStorage, ConfigurableClass):
    """Never instantiated: :meth:`from_config_value` returns Dagster's PostgreSQL or SQLite storage,
    keeping this class's ``inst_data`` so that whatever Dagster rebuilds from it chooses again."""

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": dg.StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> DagsterStorage:  # type: ignore[override]
        url = os.environ.get(PG_URL_VAR, "")
        if url:
            return DagsterPostgresStorage(postgres_url=postgres_url(url), inst_data=inst_data)
        return DagsterSqliteStorage.from_local(base_dir=config_value["base_dir"], inst_data=inst_data)
