"""Dagster code location: MongoDB order events -> lifecycles, alerts and daily Parquet tables.

Load it with ``dagster dev -w workspace.yaml`` (or ``-m orderwatch_dagster.definitions``).
"""
