"""Shared fixtures: a real MongoDB-protocol server (nx-27017, or the server in ``MONGO_URI``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from tests.mongo_server import NxServer, claim_session_slot

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """Claim this session's test ports before xdist starts its workers, which inherit the claim."""
    claim_session_slot()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB URI for the whole session: ``MONGO_URI`` when set, else a fresh nx-27017."""
    external = os.environ.get("MONGO_URI")
    if external:
        yield external
        return
    server = NxServer(tmp_path_factory.mktemp("nx"))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def mongo_db_name() -> str:
    """A database name no other test uses."""
    return f"ow_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mongo_db(mongo_uri: str, mongo_db_name: str) -> Iterator[pymongo.database.Database]:
    """A fresh, empty database on the session's server; dropped afterwards."""
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        yield client[mongo_db_name]
        client.drop_database(mongo_db_name)
    finally:
        client.close()
