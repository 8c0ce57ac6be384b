"""The code location: every asset, check, job, schedule, sensor and resource, gathered once."""

import dagster as dg

from orderwatch_dagster.assets import daily_assets
from orderwatch_dagster.checks import daily_checks
from orderwatch_dagster.jobs import daily_tables_job
from orderwatch_dagster.leaderboard_assets import (
    leaderboard_assets,
    leaderboard_checks,
    leaderboard_first_snapshot_sensor,
    leaderboard_job,
    leaderboard_schedule,
)
from orderwatch_dagster.resources import resources_from_env
from orderwatch_dagster.schedules import daily_schedules
from orderwatch_dagster.sensors import daily_sensors

defs = dg.Definitions(
    assets=[*daily_assets, *leaderboard_assets],
    asset_checks=[*daily_checks, *leaderboard_checks],
    jobs=[daily_tables_job, leaderboard_job],
    schedules=[*daily_schedules, leaderboard_schedule],
    sensors=[*daily_sensors, leaderboard_first_snapshot_sensor],
    resources=resources_from_env(),
    # One process per run: the steps are polars work that already uses every core, and starting
    # a Python process per step (dagster + polars imports) costs more than the steps themselves.
    executor=dg.in_process_executor,
)
