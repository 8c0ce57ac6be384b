"""The selection, pure: filters, ranking, hysteresis, pins, excludes, refusal; and the rules file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from orderwatch_dagster import tables
from orderwatch_dagster.leaderboard import parse
from orderwatch_dagster.rules import RulesError
from orderwatch_dagster.selection import SelectionRefused, SelectionRules, load_selection_rules, select
from tests.dagster.leaderboard_docs import addr, doc, row

T0 = datetime(2026, 12, 7, 0, tzinfo=UTC)
EMPTY = pl.DataFrame(schema=tables.schema(tables.TRADER_SELECTION))


def rules(**kw: object) -> SelectionRules:
    base = {
        "target": 3,
        "ranking": {"weights": {"month.roi": 1.0}},
        "hysteresis": {"margin": 0.1, "confirmations": 2, "min_stay_h": 0},
    }
    return SelectionRules.model_validate({**base, **kw})


def board(rois: dict[int, str], at: datetime, **overrides: dict) -> pl.DataFrame:
    """Active, eligible traders addr(i) with month roi ``rois[i]``; ``overrides[i]`` changes a row."""
    rows = []
    for i, roi in rois.items():
        r = row(addr(i), month=("1000.0", roi, "5000000.0"), name=f"t{i}")
        r.update(overrides.get(f"a{i}", {}))
        rows.append(r)
    c = SelectionRules().cohorts
    return parse(doc(rows), at, c.size_cohorts(), c.pnl_cohorts())


def decisions(df: pl.DataFrame) -> dict[str, str]:
    return dict(zip(df["ethAddress"], df["decision"], strict=True))


def test_first_selection_takes_the_top_and_labels_with_cohorts() -> None:
    b = board({1: "0.1", 2: "0.3", 3: "0.2", 4: "0.05", 5: "0.9"}, T0, a5={"accountValue": "5000.0"})
    df = select(b, EMPTY, rules(), T0)
    assert decisions(df) == {addr(2): "selected", addr(3): "selected", addr(1): "selected"}
    top = df.filter(pl.col("ethAddress") == addr(2)).row(0, named=True)
    assert (top["rank"], top["label"], top["tags"], top["selectedSince"]) == (
        1,
        "t2",
        ["Apex Predator", "Humble Earner"],
        T0,
    )
    assert top["reason"] == "rank 1: a free slot"


def test_inactive_traders_are_not_selected() -> None:
    idle = {"windowPerformances": row(addr(0), day=("0.0", "0.0", "0.0"))["windowPerformances"]}
    b = board({1: "0.1", 2: "0.9"}, T0, a2=idle)
    assert decisions(select(b, EMPTY, rules(), T0)) == {addr(1): "selected"}


def test_a_challenger_replaces_the_weakest_only_after_k_snapshots_by_the_margin() -> None:
    r = rules()
    first = select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.01"}, T0), EMPTY, r, T0)
    # 4 becomes the best: it beats the weakest incumbent (1) by far, but must do so twice.
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    second = select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.9"}, t1), first, r, t1)
    d = decisions(second)
    assert d[addr(4)] == "challenger" and d[addr(1)] == "kept by hysteresis"
    c = second.filter(pl.col("ethAddress") == addr(4)).row(0, named=True)
    assert (c["streak"], c["comparedWith"]) == (1, addr(1)) and "1 of 2 snapshots" in c["reason"]
    third = select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.9"}, t2), second, r, t2)
    d = decisions(third)
    assert d[addr(4)] == "selected" and d[addr(1)] == "dropped"
    assert third.filter(pl.col("ethAddress") == addr(1))["reason"][0].startswith(f"replaced by {addr(4)}")
    # An incumbent keeps its seat when the challenger's lead is within the margin (scores are
    # percentiles: 0.11 ranks 2nd of 4 (0.5), 0.1 last (0.25)); the streak resets.
    close = select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.11"}, t1), first, rules(hysteresis={"margin": 0.3}), t1)
    assert decisions(close)[addr(1)] == "kept by hysteresis" and addr(4) not in decisions(close)


def test_minimum_stay_protects_a_new_member() -> None:
    r = rules(hysteresis={"margin": 0.0, "confirmations": 1, "min_stay_h": 24})
    first = select(board({1: "0.1", 2: "0.2", 3: "0.3"}, T0), EMPTY, r, T0)
    t1 = T0 + timedelta(hours=1)
    d = decisions(select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.9"}, t1), first, r, t1))
    assert d[addr(1)] == "kept by hysteresis" and addr(4) not in d
    t2 = T0 + timedelta(hours=25)
    d = decisions(select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.9"}, t2), first, r, t2))
    assert d[addr(1)] == "dropped" and d[addr(4)] == "selected"


def test_pins_and_excludes() -> None:
    r = rules(pins=[addr(9).upper().replace("0X", "0x")], excludes=[addr(3)])
    df = select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.05"}, T0), EMPTY, r, T0)
    assert decisions(df) == {addr(9): "pinned", addr(3): "excluded", addr(2): "selected", addr(1): "selected"}
    assert "not on the leaderboard" in df.filter(pl.col("decision") == "pinned")["reason"][0]


def test_a_selection_that_would_halve_the_list_is_refused() -> None:
    r = rules(target=4)
    first = select(board({1: "0.1", 2: "0.2", 3: "0.3", 4: "0.4"}, T0), EMPTY, r, T0)
    t1 = T0 + timedelta(hours=1)
    with pytest.raises(SelectionRefused, match="would have 1 traders, the current one has 4"):
        select(board({1: "0.1"}, t1), first, r, t1)
    assert decisions(select(board({1: "0.1", 2: "0.2"}, t1), first, r, t1))[addr(3)] == "dropped"  # half: allowed


def test_the_committed_file_is_the_defaults_and_bad_files_name_file_key_problem(tmp_path: Path) -> None:
    assert load_selection_rules() == SelectionRules()
    bad = tmp_path / "sel.toml"
    bad.write_text('target = 0\n[ranking]\nweights = { "month.foo" = 1.0 }\n')
    with pytest.raises(RulesError) as err:
        load_selection_rules(bad)
    assert str(bad) in str(err.value) and "target:" in str(err.value) and "ranking.weights" in str(err.value)
    bad.write_text('[cohorts]\nsize = { "A" = 10.0, "B" = 5.0 }\n')
    with pytest.raises(RulesError, match=r"cohorts\.size: .*ascending"):
        load_selection_rules(bad)
    with pytest.raises(RulesError, match="selection rules file not found"):
        load_selection_rules(tmp_path / "missing.toml")
