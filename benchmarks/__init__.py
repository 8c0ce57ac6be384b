"""Benchmarks for the collector's hot path and the Dagster transforms (``python -m benchmarks``).

Every benchmark measures the project's code side by side with references in the same run and
reports ratios; absolute times on a shared machine are noisy, ratios are what we track.
"""
