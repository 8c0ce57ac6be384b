"""Schedules: yesterday's final build shortly after midnight UTC, and today's refresh every 15 minutes.

Plain cron schedules that pick the partition themselves (rather than
``build_schedule_from_partitioned_job``): with ``end_offset=1`` today is a partition, and the
nightly run must target yesterday, not the newest partition.
"""

from datetime import timedelta

import dagster as dg

from orderwatch_dagster.jobs import daily_tables_job

NIGHTLY_CRON = "10 0 * * *"
"""00:10 UTC: ten minutes for the collector's last batches of the previous day to land."""
INTRADAY_CRON = "*/15 * * * *"


@dg.schedule(
    job=daily_tables_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_previous_day_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Build the previous UTC day's partition of every daily table."""
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"nightly:{day}", partition_key=day, tags={"orderwatch/trigger": "nightly"})


@dg.schedule(
    job=daily_tables_job,
    cron_schedule=INTRADAY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def intraday_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Rebuild today's (still growing) UTC partition."""
    at = context.scheduled_execution_time
    day = at.date().isoformat()
    return dg.RunRequest(
        run_key=f"intraday:{at.strftime('%Y-%m-%dT%H:%M')}", partition_key=day, tags={"orderwatch/trigger": "intraday"}
    )


daily_schedules = [nightly_previous_day_schedule, intraday_refresh_schedule]
