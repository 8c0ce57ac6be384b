"""The benchmarks in their tiny modes: each produces its figures and its correctness checks hold.

No timing assertions: speed is reported by ``make bench``, never asserted in tests.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from benchmarks import (
    context,
    e2e,
    extraction,
    frames,
    journal,
    leaderboard,
    lifecycles,
    memory,
    node,
    polling,
    scorecards,
    transforms,
)
from benchmarks.events import write_events
from benchmarks.measure import run_child
from benchmarks.report import BY_HAND, Section, markdown, table


def assert_complete(section: Section) -> None:
    assert section.rows and all(r.value for r in section.rows)
    assert section.checks and all(section.checks.values()), section.checks
    text = table([section]) + markdown([section], {"machine": "here"}, "today")
    assert all(r.label in text for r in section.rows)


def test_frame_hot_path_agrees_with_naive_and_reports_ratios() -> None:
    section = frames.run(quick=True)
    assert_complete(section)
    assert any("unchanged: hot / floor" in r.label and r.target for r in section.rows)


def test_memory_per_order_measured_in_a_child(tmp_path: Path) -> None:
    path = tmp_path / "frames.bin"
    counts = memory.write_frames(path, 2_000)
    got = run_child("benchmarks.memory", str(path), str(len(counts)))
    assert got["orders"] == counts[-1] >= 2_000 and got["rss_bytes"] > 0


def test_transforms_match_the_pure_python_reference(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    assert write_events(path, 20_000) > 15_000
    assert transforms.agree(path) == dict.fromkeys(transforms.FAST, True)
    got = run_child("benchmarks.transforms", str(path), "order_lifecycles", "polars")
    assert got["rows"] > 0 and got["seconds"] > 0 and got["peak_rss_mib"] >= 0


def test_scorecards_in_duckdb_sql_equal_the_polars_ones(tmp_path: Path) -> None:
    day = scorecards.build(tmp_path, 4, traders_n=30)
    fast, sql = scorecards.with_polars(tmp_path, day), scorecards.with_duckdb(tmp_path, day)
    assert fast.height == 30 * 4
    assert fast["roundTrips"].sum() > 100 and fast["ordersPlaced"].sum() > 1000  # the figures are exercised
    # unrealized PnL both from the day's last account sample (23:59) and from marks (23:00)
    assert {t.strftime("%H:%M") for t in fast["unrealizedAsOf"]} == {"23:59", "23:00"}
    assert scorecards.differences(fast, sql) == []
    # The comparison does see a difference.
    drawdown = pl.col("maxDrawdown")
    off = sql.with_columns(pl.when(pl.col("window") == "7d").then(drawdown * 1.001).otherwise(drawdown))
    assert scorecards.differences(fast, off) == ["maxDrawdown: 30 rows"]


def test_lifecycles_in_duckdb_sql_equal_the_polars_ones(tmp_path: Path) -> None:
    day = "2026-10-04"
    lifecycles.build(tmp_path, day, 4, 30)
    fast, sql = lifecycles.with_polars(tmp_path, day), lifecycles.with_duckdb(tmp_path, day)
    # the figures are exercised: amend chains, open and closed orders, fills, orders known only
    # from fills, the book
    assert fast.height > 500 and fast["amendCount"].max() > 3 and fast["nFills"].sum() > 100  # type: ignore[operator]
    assert set(fast["outcome"]) >= {"open", "filled", "canceled"} and (~fast["seenInEvents"]).sum() > 5
    assert fast["distanceBps"].is_not_null().sum() > 50
    key = ("ethAddress", "rootOid")
    assert scorecards.differences(fast, sql, key) == []
    # The comparison does see a difference, an exact decimal one.
    filled = pl.col("filledSz")
    first = pl.col("rootOid") == fast["rootOid"][0]
    off = sql.with_columns(filledSz=pl.when(first).then(filled + pl.lit(1).cast(pl.Decimal(38, 8))).otherwise(filled))
    assert scorecards.differences(fast, off, key) == ["filledSz: 1 rows"]


def test_extraction_reads_every_document() -> None:
    assert_complete(extraction.run(quick=True))


def test_end_to_end_has_zero_loss_and_zero_duplicates() -> None:
    section = e2e.run(quick=True)
    assert_complete(section)
    assert {"zero_loss", "zero_duplicates", "final_statuses_right"} <= set(section.checks)


def test_polling_reports_the_period_against_the_optimum_without_429() -> None:
    section = polling.run(quick=True)
    assert_complete(section)
    assert any("achieved / optimum" in r.label and r.target for r in section.rows)


def test_fills_and_book_context_costs_and_subscriptions_reported() -> None:
    section = context.run(quick=True)
    assert_complete(section)
    assert any("1000 subscriptions" in r.label and r.met for r in section.rows)


def test_node_firehose_scanned_and_every_paced_block_reaches_mongodb() -> None:
    section = node.run(quick=True)
    assert_complete(section)
    assert any("vs the 150 MB/s target" in r.label for r in section.rows)


def test_leaderboard_fast_build_agrees_with_the_naive_one() -> None:
    section = leaderboard.run(quick=True)
    assert_complete(section)
    assert any(r.label.startswith("asset step") for r in section.rows)


def test_journal_fsync_policies_measured() -> None:
    assert_complete(journal.run(quick=True))


def test_a_partial_run_replaces_only_its_own_sections() -> None:
    def section(name: str, value: str) -> Section:
        s = Section(name, f"{name} title")
        s.add("figure", value)
        return s

    before = markdown([section("a", "1"), section("b", "2")], {"machine": "old"}, "yesterday")
    after = markdown([section("b", "3"), section("c", "4")], {"machine": "new"}, "today", before)
    assert after.index("a title") < after.index("b title") < after.index("c title")  # file order kept, new last
    assert "| figure | 1 |" in after and "| figure | 3 |" in after and "| figure | 2 |" not in after
    assert "Measured yesterday." in after and "Measured today." in after and "**machine**: new" in after
    assert after.count("<!-- benchmark: b -->") == 1
    # what was written by hand under a section's table stays when that benchmark is re-run
    edited = after.replace("| figure | 3 |  |  |\n", f"| figure | 3 |  |  |\n\n{BY_HAND}\n- b is slow because ...\n")
    again = markdown([section("b", "5")], {"machine": "new"}, "later", edited)
    assert "| figure | 5 |" in again and "| figure | 3 |" not in again and "Measured later." in again
    assert again.index("| figure | 5 |") < again.index(BY_HAND) < again.index("- b is slow because ...")
    assert again.index("- b is slow because ...") < again.index("c title") and again.count(BY_HAND) == 1
