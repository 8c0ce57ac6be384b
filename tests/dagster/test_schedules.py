"""Schedule ticks request the right partitions."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from orderwatch_dagster.definitions import defs
from orderwatch_dagster.schedules import intraday_refresh_schedule, nightly_previous_day_schedule


def tick(schedule: dg.ScheduleDefinition, at: datetime) -> list[dg.RunRequest]:
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
        )
        return list(schedule.evaluate_tick(ctx).run_requests or [])


@pytest.mark.parametrize(
    ("at", "day"),
    [
        (datetime(2026, 11, 24, 0, 10, tzinfo=UTC), "2026-11-23"),
        (datetime(2026, 12, 1, 0, 10, tzinfo=UTC), "2026-11-30"),
        (datetime(2027, 1, 1, 0, 10, tzinfo=UTC), "2026-12-31"),
    ],
)
def test_nightly_builds_the_previous_day(at: datetime, day: str) -> None:
    (req,) = tick(nightly_previous_day_schedule, at)
    assert req.partition_key == day
    assert req.run_key == f"nightly:{day}"
    assert nightly_previous_day_schedule.cron_schedule == "10 0 * * *"
    assert nightly_previous_day_schedule.execution_timezone == "UTC"
    assert nightly_previous_day_schedule.job_name == "daily_tables_job"


@pytest.mark.parametrize(
    ("at", "day"),
    [
        (datetime(2026, 11, 24, 0, 0, tzinfo=UTC), "2026-11-24"),
        (datetime(2026, 11, 24, 13, 45, tzinfo=UTC), "2026-11-24"),
        (datetime(2026, 11, 24, 23, 45, tzinfo=UTC), "2026-11-24"),
    ],
)
def test_intraday_refreshes_today(at: datetime, day: str) -> None:
    (req,) = tick(intraday_refresh_schedule, at)
    assert req.partition_key == day
    assert intraday_refresh_schedule.cron_schedule == "*/15 * * * *"
    # Two ticks of the same day are distinct runs.
    (later,) = tick(intraday_refresh_schedule, at.replace(minute=(at.minute + 15) % 60 or 59))
    assert later.run_key != req.run_key
