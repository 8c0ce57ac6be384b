"""The tables and the report on an S3-compatible store (moto's server on loopback): the daily assets
publish there, polars and DuckDB read the tables back over ``s3://`` as an analyst would, and a store
that goes away in the middle of a write leaves the previous partition in place, never half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator

import duckdb
import polars as pl
import pyarrow.fs as pafs
import pytest
import s3fs
from pymongo.database import Database

from orderwatch_dagster import tables
from orderwatch_dagster.resources import ParquetStore
from tests.dagster import scenario as sc
from tests.dagster.test_assets import materialize_day
from tests.s3_server import DyingRelay, create_bucket, s3_env, s3_server

BUCKET = "analytics"
ROOT = f"s3://{BUCKET}/orderwatch/parquet"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh S3 server with the bucket, and the AWS variables pointing at it; yields its endpoint."""
    with s3_server() as endpoint:
        for name, value in s3_env(endpoint).items():
            monkeypatch.setenv(name, value)
        create_bucket(endpoint, BUCKET)
        yield endpoint


def object_keys(prefix: str) -> list[str]:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    return sorted(fs.find(f"{BUCKET}/{prefix}"))


@pytest.mark.slow
def test_the_day_is_published_to_s3_and_read_back_by_polars_and_duckdb(
    seeded_db: Database, resources: dict, s3: str
) -> None:
    store = ParquetStore(data_dir="/nonexistent", parquet_url=ROOT)
    assert materialize_day(sc.D1, {**resources, "store": store}).success

    assert store.days("order_lifecycles") == [sc.D1]
    assert store.path("fills", sc.D1) == f"{ROOT}/fills/date={sc.D1}/fills.parquet"
    assert object_keys("orderwatch") == sorted(
        [f"{BUCKET}/orderwatch/parquet/{t}/date={sc.D1}/{t}.parquet" for t in tables.DAILY_TABLES]
        + [f"{BUCKET}/orderwatch/reports/date={sc.D1}/report.html"]
    )
    report = s3fs.S3FileSystem(skip_instance_cache=True).cat(f"{BUCKET}/orderwatch/reports/date={sc.D1}/report.html")
    assert f"orderwatch daily report: {sc.D1}" in report.decode()

    # polars, as docs/reading-the-data.md does, over s3:// with only the AWS variables set.
    lifecycles = pl.scan_parquet(f"{ROOT}/order_lifecycles/**/*.parquet", hive_partitioning=True).collect()
    assert lifecycles["date"].cast(pl.String).unique().to_list() == [sc.D1]
    assert lifecycles.select(sc.LIFECYCLE_COLS).to_dicts() == sc.LIFECYCLES_D1

    # DuckDB: read_parquet on s3:// URLs (through s3fs here; httpfs reads the same URLs where it is installed).
    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem(skip_instance_cache=True))
    counts = con.sql(
        f"select action, count(*) from read_parquet('{ROOT}/order_events/*/*.parquet', hive_partitioning = true) "
        f"where date = '{sc.D1}' group by action order by action"
    ).fetchall()
    events = store.read("order_events", sc.D1)
    assert counts == sorted(events.group_by("action").len().iter_rows())
    assert sum(n for _, n in counts) == 4


@pytest.mark.parametrize(
    ("rows", "uploaded_share"),
    [(2_000, 0.5), (40_000, 0.75)],
    ids=["single-put", "multipart"],
)
def test_a_store_gone_mid_write_leaves_the_old_partition(
    s3: str, monkeypatch: pytest.MonkeyPatch, rows: int, uploaded_share: float
) -> None:
    store = ParquetStore(parquet_url=ROOT)
    old = pl.DataFrame({"day": ["old"] * 3, "blob": [b"x"] * 3})
    store.write("order_events", sc.D1, old)
    # Incompressible rows: the new partition is about rows x 512 bytes. The second case is a multipart
    # upload (pyarrow sends 10 MB parts): the cut falls in its second part, after the first is stored.
    new = pl.DataFrame({"day": ["new"] * rows, "blob": [os.urandom(512) for _ in range(rows)]})
    size = rows * 512
    relay = DyingRelay(int(s3.rsplit(":", 1)[1]), cut_after=int(size * uploaded_share))
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(OSError, match=rf"could not publish {ROOT}/order_events/date={sc.D1}/order_events.parquet"):
        store.write("order_events", sc.D1, new)
    assert relay.dead.is_set() and relay.sent > size * uploaded_share / 2  # it died mid-upload, not before it

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    assert object_keys("orderwatch") == [f"{BUCKET}/orderwatch/parquet/order_events/date={sc.D1}/order_events.parquet"]
    seen = pl.read_parquet(f"{ROOT}/order_events/date={sc.D1}/order_events.parquet")
    assert seen.equals(old)
    fs, root = pafs.FileSystem.from_uri(ROOT)
    with fs.open_input_file(f"{root}/order_events/date={sc.D1}/order_events.parquet") as f:
        assert f.size() < 10_000  # the old object, not a prefix of the new one

    # The store back: the next build publishes the new day whole.
    store.write("order_events", sc.D1, new)
    assert pl.scan_parquet(f"{ROOT}/order_events/**/*.parquet", hive_partitioning=True).select(
        pl.col("day").unique()
    ).collect()["day"].to_list() == ["new"]
