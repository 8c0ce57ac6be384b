"""The one partitioning every daily table shares: UTC calendar days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

START_DATE = "2024-01-01"
"""First partition; earlier days simply have no data."""

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=1)
"""UTC days. ``end_offset=1`` makes today's (still growing) day a valid partition, so the
intraday schedule can refresh it; without it the newest partition would be yesterday."""


def day_bounds(day: str | date) -> tuple[datetime, datetime]:
    """Return ``[start, end)`` of a ``YYYY-MM-DD`` UTC day as tz-aware datetimes."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
