"""The job that builds one day of every daily table (assets and their checks) and the day's report.

Its partitioning (UTC days) comes from the selected assets."""

import dagster as dg

from orderwatch_dagster.assets import GROUP

daily_tables_job = dg.define_asset_job(
    "daily_tables_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Build one UTC day of every table in the daily group, with its checks, and the day's HTML report.",
)
