"""Parsing the leaderboard document: exact values, ranks, cohorts, and whole-snapshot rejection."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from orderwatch_dagster import tables
from orderwatch_dagster.leaderboard import LeaderboardError, parse
from orderwatch_dagster.selection import SelectionRules
from tests.dagster.leaderboard_docs import addr, doc, row

AT = datetime(2026, 12, 7, 10, tzinfo=UTC)
BANDS = SelectionRules().cohorts


def parsed(body: bytes) -> pl.DataFrame:
    return parse(body, AT, BANDS.size_cohorts(), BANDS.pnl_cohorts())


def test_values_exact_ranks_and_cohorts() -> None:
    rows = [
        row(addr(1), "48857952.3308470026", day=("644054.375913", "0.0133582723", "3250555746.66"), name="ABC"),
        row("0x" + "AB" * 20, "120.5", all_time=("-2000000.0", "-0.9999999999", "1.0")),
        row("cd" * 20, "7000.0", day=("-5.0", "-0.0000000001", "0.0")),  # no 0x prefix: accepted
    ]
    df = parsed(doc(rows))
    assert df.schema == tables.schema(tables.LEADERBOARD)
    first = df.row(0, named=True)
    assert first["accountValue"] == Decimal("48857952.3308470026")
    assert (first["dayPnl"], first["dayRoi"], first["dayVlm"]) == (
        Decimal("644054.375913"),
        Decimal("0.0133582723"),
        Decimal("3250555746.66"),
    )
    assert (first["displayName"], first["sizeCohort"], first["pnlCohort"]) == ("ABC", "Leviathan", "Humble Earner")
    assert df["ethAddress"].to_list() == [addr(1), "0x" + "ab" * 20, "0x" + "cd" * 20]
    assert df["dayRank"].to_list() == [1, 2, 3]
    assert df["allTimeRank"].to_list() == [1, 3, 2]
    assert df.row(1, named=True)["allTimeRoi"] == Decimal("-0.9999999999")
    assert df.row(1, named=True)["pnlCohort"] == "Giga-Rekt"
    assert df.row(2, named=True)["dayRoi"] == Decimal("-0.0000000001")
    assert df["snapshotAt"].unique().to_list() == [AT]


def test_pretty_printed_and_reordered_document_reads_the_same() -> None:
    rows = [row(addr(i), f"{i}000.25", name=f"n{i}") for i in range(1, 5)]
    rows[2]["windowPerformances"].reverse()  # read as key-value pairs, not by position
    rows[3] = {k: rows[3][k] for k in reversed(list(rows[3]))}
    compact, pretty = parsed(doc(rows)), parsed(doc(rows, indent=2))
    assert compact.equals(pretty)
    assert compact["monthPnl"].to_list() == [Decimal("1000.0")] * 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"windowPerformances": "drop week"},
            "row 1 (0x0000000000000000000000000000000000000002): missing window week",
        ),
        ({"ethAddress": "0x1234"}, "row 1 (0x1234): malformed ethAddress 0x1234"),
        ({"accountValue": "12.12345678901"}, "accountValue 12.12345678901 is not a decimal with at most 10 decimals"),
        ({"accountValue": "1e5"}, "accountValue 1e5 is not a decimal"),
    ],
)
def test_a_bad_row_rejects_the_snapshot_naming_row_and_problem(bad: dict, message: str) -> None:
    rows = [row(addr(i)) for i in range(1, 4)]
    if bad.get("windowPerformances") == "drop week":
        rows[1]["windowPerformances"] = [p for p in rows[1]["windowPerformances"] if p[0] != "week"]
    else:
        rows[1].update(bad)
    with pytest.raises(LeaderboardError) as err:
        parsed(doc(rows))
    assert "1 bad rows, snapshot rejected" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (doc([row(addr(1)), row(addr(2))])[:-40], "not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b'{"rows": []}', "no leaderboardRows"),
        (b'{"leaderboardRows": []}', "no rows"),
    ],
)
def test_truncated_or_garbled_documents_are_rejected(body: bytes, message: str) -> None:
    with pytest.raises(LeaderboardError, match=message):
        parsed(body)
