"""The selection acceptance run (tests.reliability.selection_soak, ``make selection-soak`` at 500
traders on 5 addresses) at suite size: a selection from the simulated leaderboard followed live and
polled, a changing leaderboard, a truncated and a much smaller snapshot, checked against the
ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.selection_soak import SelectionSoakConfig, run_selection_soak


@pytest.mark.slow
async def test_a_changing_selection_is_followed_without_loss(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    cfg = SelectionSoakConfig(traders=30, addresses=2, churn=3, leaderboard_rows=5_000, scale=10,
                              orders_per_trader_per_min=12.0)
    result = await run_selection_soak(cfg, mongo_uri, mongo_db.name, tmp_path)
    print(result.figures())
    assert result.ok, (result.problems, result.report.summary(), result.missed)
    assert result.figures_["polled"] == 10 and result.figures_["newcomers"] == 6
    assert result.report.observable > 20, result.report.summary()
