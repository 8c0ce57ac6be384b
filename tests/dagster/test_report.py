"""The charts in each table's metadata and the daily HTML report, on the scenario's days and on an empty day;
the report's trader pages rendered in headless Chromium (screenshot: ``test-output/dagster/report_traders.png``)."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from PIL import Image
from pymongo.database import Database

from orderwatch_dagster import charts, report, tables
from orderwatch_dagster.assets import daily_assets
from orderwatch_dagster.resources import MongoResource, ParquetStore
from tests.dagster import scenario as sc
from tests.e2e.browser import chromium

DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
BASE_URL = "http://127.0.0.1:3100"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "dagster"
TRADER_CHARTS = 3
"""Images on a trader's page: PnL, position with price, distance to liquidation."""
RENDERED = """
return Array.from(document.images).map(img => [img.complete && img.naturalWidth > 0, img.closest('section').id]);
"""


def images(text: str) -> list[Image.Image]:
    """Every data-URI PNG in ``text``, decoded (raises if one is not a valid PNG)."""
    out = []
    for b64 in DATA_URI.findall(text):
        image = Image.open(io.BytesIO(base64.b64decode(b64)))
        image.load()
        assert image.format == "PNG"
        out.append(image)
    return out


SNAPSHOT_AT = datetime.fromisoformat(f"{sc.D2}T12:00:00+00:00")
OTHERS = ["0x" + f"{i:02x}" * 20 for i in range(0x10, 0x14)]
"""Leaderboard accounts nobody follows."""


def leaderboard() -> pl.DataFrame:
    """A leaderboard snapshot of the scenario's traders and four others in two size cohorts."""
    rows = {sc.A: ("whale", "0.10"), sc.B: ("small", "-0.05"), OTHERS[0]: ("whale", "0.30"),
            OTHERS[1]: ("whale", "0.02"), OTHERS[2]: ("small", "0.01"), OTHERS[3]: (None, "0.5")}
    given = {"snapshotAt": [SNAPSHOT_AT] * len(rows), "ethAddress": list(rows),
             "sizeCohort": [c for c, _ in rows.values()], "monthRoi": [r for _, r in rows.values()],
             "monthPnl": ["1000.0"] * len(rows)}
    frame = pl.DataFrame(given).with_columns(pl.lit(None).alias(c.name) for c in tables.LEADERBOARD
                                             if c.name not in given)
    return tables.conform(frame, tables.LEADERBOARD).collect()


def latest_metadata(instance: dg.DagsterInstance, asset: str, day: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return dict(materialization.metadata)


@pytest.fixture
def built(seeded_db: Database, mongo_uri: str, mongo_db_name: str, data_dir: Path) -> dg.DagsterInstance:
    """Both scenario days materialized, the report linked at :data:`BASE_URL`."""
    resources = {
        "mongo_db": MongoResource(uri=mongo_uri, database=mongo_db_name),
        "store": ParquetStore(data_dir=str(data_dir), report_base_url=BASE_URL),
    }
    ParquetStore(data_dir=str(data_dir)).write_snapshot("leaderboard", SNAPSHOT_AT, leaderboard())
    instance = dg.DagsterInstance.ephemeral()
    for day in (sc.D1, sc.D2):
        assert dg.materialize(daily_assets, partition_key=day, resources=resources, instance=instance).success
    return instance


def test_every_table_carries_its_chart_and_the_report_is_written_and_linked(
    built: dg.DagsterInstance, data_dir: Path
) -> None:
    store = ParquetStore(data_dir=str(data_dir))
    for table in tables.DAILY_TABLES:
        chart = latest_metadata(built, table, sc.D2)["chart"]
        assert isinstance(chart, dg.MarkdownMetadataValue)
        assert chart.md_str.startswith(f"![{table} {sc.D2}](data:image/png;base64,")
        assert len(chart.md_str) < 150_000, table
        (image,) = images(chart.md_str)
        assert image.width >= 600 and image.height >= 100, table

    meta = latest_metadata(built, "daily_report", sc.D2)
    path = Path(store.report_path(sc.D2))
    assert path == data_dir / "reports" / f"date={sc.D2}" / "report.html"
    assert meta["path"] == dg.MetadataValue.path(str(path))
    assert meta["report"] == dg.MetadataValue.url(f"{BASE_URL}/date={sc.D2}/report.html")
    assert meta["missing_tables"] == dg.MetadataValue.text("none")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # the temporary file is gone

    page = path.read_text()
    for anchor, title in report.SECTIONS.items():
        assert f'<section id="{anchor}"><h2>{title}</h2>' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    # activity heatmap, events per hour, lifetimes, outcomes, volume, large changes; then each trader's page
    traders = report.trader_page_addresses(store.read("fills", sc.D2), store.read("positions_snapshot", sc.D2))
    assert len(traders) >= 2
    assert len(images(page)) == 6 + TRADER_CHARTS * len(traders) + 1  # + the cohorts' chart
    for address in traders:
        section = page[page.index(f'<section id="trader-{address}">'):]
        section = section[: section.index("</section>")]
        assert len(images(section)) == TRADER_CHARTS
        assert "amended order(s)" in section or "No amended order that day." in section
    assert "Whale A" in page and "Bee" in page  # the watch list's labels name the traders
    lifecycles = store.read("order_lifecycles", sc.D2)
    alerts = store.read("large_change_alerts", sc.D2)
    assert f"<b>{store.read('order_events', sc.D2)['ethAddress'].n_unique()}</b>traders" in page
    assert f"<b>{lifecycles.height}</b>orders (chains)" in page
    assert f"{alerts.height} alert(s)" in page
    only_fills = int((~lifecycles["seenInEvents"]).sum())
    assert f"{only_fills} order(s) are known only from their fills" in page
    unknown = int((lifecycles["outcome"] == "unknown").sum())
    assert f"{unknown} order(s) closed with an outcome still unknown" in page
    assert "No earlier day is missing its order_events partition." in page


def test_an_empty_day_says_no_data_and_names_what_is_missing() -> None:
    frames = {t: report.empty(t) for t in report.TABLES}
    page = report.build(
        "2026-01-05",
        frames,
        missing_tables=["fills"],
        gaps=report.missing_days(["2026-01-01", "2026-01-03"], "2026-01-05"),
    )
    pictures = images(page)
    assert len(pictures) == 6 and all(p.width > 0 for p in pictures)  # no trader page, no cohort chart
    assert "No trader traded or held a position that day." in page
    assert "No leaderboard snapshot within a day before the day's end" in page
    assert "No partition for this day in: fills." in page
    assert "2 earlier day(s) have no order_events partition: 2026-01-02, 2026-01-04." in page
    for table in tables.DAILY_TABLES:  # every metadata chart copes with an empty table
        (image,) = images(charts.markdown_image(charts.table_chart(table, report.empty(table), "2026-01-05"), table))
        assert image.height < 200  # the short "no data" card, not an empty plot


def test_missing_days_are_the_holes_before_the_day() -> None:
    assert report.missing_days([], "2026-01-05") == []
    assert report.missing_days(["2026-01-05", "2026-01-07"], "2026-01-05") == []
    assert report.missing_days(["2026-01-01", "2026-01-02", "2026-01-04", "2026-01-09"], "2026-01-06") == [
        "2026-01-03",
        "2026-01-05",
    ]


def test_charts_are_deterministic_and_follow_the_data() -> None:
    events = pl.DataFrame(
        {
            "eventAt": pl.Series(
                ["2026-01-05T01:00:00", "2026-01-05T01:30:00", "2026-01-05T13:00:00"], dtype=pl.String
            ).str.to_datetime(time_zone="UTC"),
            "action": ["new", "closed", "new"],
            "ethAddress": [sc.A, sc.A, sc.B],
        }
    )
    first = charts.table_chart("order_events", events, "2026-01-05")
    assert first == charts.table_chart("order_events", events, "2026-01-05")
    assert first != charts.table_chart("order_events", events.head(2), "2026-01-05")


def test_the_trader_pages_render_in_chromium(built: dg.DagsterInstance, data_dir: Path) -> None:
    """The report opens from its file in headless Chromium (no server, no external request) with every
    image decoded, each trader's three in its own section."""
    path = Path(ParquetStore(data_dir=str(data_dir)).report_path(sc.D2))
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:
        driver.get(path.as_uri())
        shown = driver.execute_script(RENDERED)
        assert shown and all(ok for ok, _ in shown), shown
        per_trader = [section for _, section in shown if section.startswith("trader-")]
        assert per_trader and all(per_trader.count(s) == TRADER_CHARTS for s in per_trader)
        driver.get(path.as_uri() + "#traders")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1100, min(int(height) + 40, 16_000))
        assert driver.save_screenshot(str(OUTPUT / "report_traders.png"))
    assert (OUTPUT / "report_traders.png").stat().st_size > 50_000


def test_the_cohort_table_compares_followed_traders_with_their_cohort() -> None:
    cards = pl.DataFrame({"ethAddress": [sc.A, sc.A, sc.B], "window": ["30d", "7d", "30d"],
                          "realizedPnl": ["120.5", "99.0", "-3.5"]})
    table = report.cohort_table(leaderboard(), cards)
    assert table.select("sizeCohort", "accounts", "followed").rows() == [
        ("small", 2, 1), ("whale", 3, 1), (None, 1, 0)]
    whale = table.row(1, named=True)
    assert whale["medianRoiAll"] == pytest.approx(0.10) and whale["medianRoiFollowed"] == pytest.approx(0.10)
    assert whale["ourPnlFollowed"] == pytest.approx(120.5) and whale["boardPnlFollowed"] == pytest.approx(1000.0)
    assert table.row(0, named=True)["ourPnlFollowed"] == pytest.approx(-3.5)


def test_a_trader_page_plots_the_unrealized_pnl_valued_at_the_days_end(monkeypatch: pytest.MonkeyPatch) -> None:
    # the position's own unrealizedPnl is as of its last change; the day's scorecard values it at the
    # day's end (a mark or the last account sample): the PnL curve ends at the scorecard's figure
    address, day = "0x" + "ab" * 20, "2026-01-05"
    frames = {t: report.empty(t) for t in report.TABLES}
    frames["positions_snapshot"] = pl.DataFrame(
        [{"ethAddress": address, "coin": "BTC", "unrealizedPnl": Decimal("-5"), "positionValue": Decimal("1000")}],
        schema=tables.schema(tables.TABLES["positions_snapshot"]), strict=False)
    frames["trader_scorecards"] = pl.DataFrame(
        [{"ethAddress": address, "window": "1d", "unrealizedPnl": 150.0}],
        schema=tables.schema(tables.TABLES["trader_scorecards"]), strict=False)
    plotted: list[float | None] = []
    real = charts.trader_pnl
    monkeypatch.setattr(charts, "trader_pnl", lambda fills, unrealized, *rest: plotted.append(unrealized)
                        or real(fills, unrealized, *rest))
    report.build(day, frames, missing_tables=[], gaps=[])
    assert plotted == [150.0]
