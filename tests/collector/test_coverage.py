"""The coverage plan (schema.coverage): what following N traders means with 1 or 5 egress addresses,
several instances, or a node. 20.5 weight per poll within 60 % of 1,200 per minute: 35.1 polls/min."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector_service.schema import POLL_WEIGHT, Coverage, coverage

LIMITS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "limits.md"


@pytest.mark.parametrize(
    ("traders", "addresses", "live", "polled", "per_address", "period"),
    [
        (10, 1, 10, 0, 0, None),
        (10, 5, 10, 0, 0, None),
        (50, 1, 10, 40, 40, 68.3),  # 40 x 20.5 / 720 x 60
        (50, 5, 50, 0, 0, None),
        (500, 1, 10, 490, 490, 837.1),
        (500, 5, 50, 450, 90, 153.8),  # the reference deployment: 50 live, 450 polled
        (5_000, 1, 10, 4_990, 4_990, 8_524.6),
        (5_000, 5, 50, 4_950, 990, 1_691.2),
    ],
)
def test_live_slots_then_polls_within_the_budget(traders: int, addresses: int, live: int, polled: int,
                                                 per_address: int, period: float | None) -> None:
    plan = coverage(traders, addresses=addresses)
    assert (plan.live, plan.polled, plan.polled_per_address, plan.not_followed) == (live, polled, per_address, 0)
    assert plan.figures()["expected_period_s"] == period
    assert plan.fresh  # no freshness wanted: nothing to miss


@pytest.mark.parametrize("traders", [10, 50, 500, 5_000])
def test_a_node_streams_everyone(traders: int) -> None:
    plan = coverage(traders, addresses=1, node=True, max_poll_period_s=60)
    assert (plan.live, plan.polled, plan.expected_period_s, plan.fresh) == (traders, 0, None, True)


def test_the_freshness_wanted() -> None:
    assert POLL_WEIGHT == 20.5
    assert not coverage(500, addresses=5, max_poll_period_s=150).fresh  # 153.8 s > 150 s
    assert coverage(500, addresses=5, max_poll_period_s=160).fresh
    assert coverage(11, max_poll_period_s=2).expected_period_s == 2.0  # never faster than the minimum interval


def test_instances_split_the_list() -> None:
    plan = coverage(500, addresses=5, instances=2)  # 250 each: 50 live and 40 polled per address
    assert (plan.live, plan.polled, plan.polled_per_address) == (100, 400, 40)
    assert coverage(501, addresses=5, instances=2).polled_per_address == 41  # the busier shard (251)
    assert coverage(80, addresses=5, instances=2).polled == 0  # 40 each: all live


def test_polling_off_leaves_traders_unfollowed() -> None:
    plan = coverage(13, poll=False)
    assert (plan.live, plan.polled, plan.not_followed, plan.expected_period_s, plan.fresh) == (10, 0, 3, None, False)


def test_the_documented_freshness_table_is_the_functions_output() -> None:
    def cell(plan: Coverage) -> str:
        if plan.expected_period_s is None:
            return f"{plan.live:,} live"
        return (f"{plan.live:,} live, {plan.polled_per_address:,} polled per address: "
                f"every {plan.expected_period_s:,.0f} s")

    rows = [f"| {n:,} | {cell(coverage(n))} | {cell(coverage(n, addresses=5))} | {cell(coverage(n, node=True))} |"
            for n in (50, 500, 5_000)]
    table = "| Traders | 1 address | 5 addresses | a node (`NODE_DATA_DIR`) |\n|---|---|---|---|\n" + "\n".join(rows)
    assert table in LIMITS_PAGE.read_text()
