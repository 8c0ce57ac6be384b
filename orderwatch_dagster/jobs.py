"""The job that builds one day of every daily table (assets and their checks)."""

import dagster as dg

from orderwatch_dagster.assets import GROUP
from orderwatch_dagster.partitions import daily_partitions

daily_tables_job = dg.define_asset_job(
    "daily_tables_job",
    selection=dg.AssetSelection.groups(GROUP),
    partitions_def=daily_partitions,
    description="Build one UTC day of every table in the daily group, with its checks.",
)
