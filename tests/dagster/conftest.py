"""Fixtures: the scenario stored in a real MongoDB-protocol server, and resources pointing at it."""

from __future__ import annotations

from pathlib import Path

import pymongo
import pytest
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster.resources import AlertChannels, MongoResource, ParquetStore
from tests.dagster import scenario


def create_indexes(db: Database) -> None:
    """The collector's indexes, as the stored schema declares them."""
    for coll, specs in schema.INDEXES.items():
        for keys, unique in specs:
            db[coll].create_index(list(keys), unique=unique)


@pytest.fixture
def seeded_db(mongo_db: Database) -> Database:
    """The scenario's documents, stored with the collector's indexes."""
    create_indexes(mongo_db)
    mongo_db[schema.ORDERS].insert_many(scenario.orders())
    mongo_db[schema.POSITIONS].insert_many(scenario.positions())
    mongo_db[schema.FILLS].insert_many(scenario.fills())
    mongo_db[schema.WATCHLIST].insert_many(scenario.watchlist())
    return mongo_db


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def resources(mongo_uri: str, mongo_db_name: str, data_dir: Path) -> dict[str, object]:
    return {
        "mongo_db": MongoResource(uri=mongo_uri, database=mongo_db_name),
        "store": ParquetStore(data_dir=str(data_dir)),
        "alert_channels": AlertChannels(),
    }


@pytest.fixture
def store(resources: dict[str, object]) -> ParquetStore:
    return resources["store"]  # type: ignore[return-value]


__all__ = ["pymongo"]
