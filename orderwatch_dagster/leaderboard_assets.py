"""The leaderboard group: hourly snapshots of the public leaderboard and the selection of whom to
follow made on each, with their checks, job and schedule.

Not partitioned: every run takes a new snapshot and keeps the earlier ones (one file each under
``<data>/parquet/<table>/date=YYYY-MM-DD/``), so rank changes and cohort migration can be queried.
"""

import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import polars as pl

from orderwatch_dagster import settings, tables
from orderwatch_dagster.assets import column_schema, markdown
from orderwatch_dagster.leaderboard import LeaderboardError, parse
from orderwatch_dagster.mongo import write_listed
from orderwatch_dagster.resources import LeaderboardSource, MongoResource, ParquetStore
from orderwatch_dagster.selection import LISTED, SelectionRefused, describe_coverage, load_selection_rules, select

GROUP = "leaderboard"
LEADERBOARD_CRON_ENV = "ORDERWATCH_LEADERBOARD_CRON"
SHRINK_WARN = 0.8
"""A snapshot with fewer rows than this share of the previous one is flagged (a cut download)."""


def _snapshot_meta(table: str, path: str, df: pl.DataFrame) -> dict[str, Any]:
    return {
        "dagster/row_count": df.height,
        "dagster/column_schema": column_schema(table),
        "path": dg.MetadataValue.path(path),
    }


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    metadata={"dagster/column_schema": column_schema("leaderboard")},
    description=(
        "A snapshot of the public leaderboard (HYPERLIQUID_LEADERBOARD_URL): one row per account, every value as "
        "the document gives it, rank per window and cohorts by size and all-time PnL (trader_selection.toml)."
    ),
)
def leaderboard(
    context: dg.AssetExecutionContext, store: ParquetStore, leaderboard_source: LeaderboardSource
) -> dg.MaterializeResult:
    rules = load_selection_rules()
    started = time.perf_counter()
    at = datetime.now(UTC)
    try:
        df = parse(leaderboard_source.fetch(), at, rules.cohorts.size_cohorts(), rules.cohorts.pnl_cohorts())
    except LeaderboardError as exc:
        raise dg.Failure(description=f"leaderboard snapshot rejected, the previous one stays: {exc}") from None
    path = store.write_snapshot("leaderboard", at, df)
    seconds = time.perf_counter() - started
    context.log.info(f"leaderboard rows={df.height} in {seconds:.3f} s")
    cohorts = df.group_by("sizeCohort").len().sort("sizeCohort")
    return dg.MaterializeResult(
        metadata={
            **_snapshot_meta("leaderboard", path, df),
            "snapshot_at": at.isoformat(),
            "seconds": round(seconds, 3),
            "size_cohorts": dg.MetadataValue.md(markdown(cohorts, 20)),
            "preview": dg.MetadataValue.md(markdown(df.sort("allTimeRank"))),
        }
    )


def _latest(store: ParquetStore, table: str, n: int = 1) -> list[pl.DataFrame]:
    return [pl.read_parquet(p) for p in store.snapshots(table)[-n:]]


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[leaderboard],
    metadata={"dagster/column_schema": column_schema("trader_selection")},
    description=(
        "Whom to follow, decided on the newest leaderboard snapshot by trader_selection.toml (filters, ranking, "
        "target size, hysteresis, pins, excludes): every decision with its reason and numbers."
    ),
)
def trader_selection(context: dg.AssetExecutionContext, store: ParquetStore) -> dg.MaterializeResult:
    rules = load_selection_rules()
    (board,) = _latest(store, "leaderboard")
    previous = _latest(store, "trader_selection")
    at = board["snapshotAt"][0]
    empty = pl.DataFrame(schema=tables.schema(tables.TRADER_SELECTION))
    try:
        df = select(board, previous[0] if previous else empty, rules, at)
    except SelectionRefused as exc:
        raise dg.Failure(description=f"selection refused: {exc}") from None
    path = store.write_snapshot("trader_selection", at, df)
    counts = dict(df.group_by("decision").len().iter_rows())
    listed = df.filter(pl.col("decision").is_in(LISTED))
    context.log.info(f"selection at={at.isoformat()} listed={listed.height} {counts}")
    plan = rules.coverage.plan(listed.height)
    if not plan.fresh:
        context.log.warning(f"coverage: {describe_coverage(plan)}")
    return dg.MaterializeResult(
        metadata={
            **_snapshot_meta("trader_selection", path, df),
            "listed": listed.height,
            "coverage": describe_coverage(plan),
            **{f"coverage_{k}": v for k, v in plan.figures().items() if k != "traders" and v is not None},
            **{k.replace(" ", "_"): int(v) for k, v in sorted(counts.items())},
            "changes": dg.MetadataValue.md(
                markdown(df.filter(pl.col("decision") != "selected").select("ethAddress", "decision", "reason"), 50)
            ),
            "list": dg.MetadataValue.md(
                markdown(listed.select("ethAddress", "label", "decision", "rank", "score", "tags"), 50)
            ),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"mongodb"},
    deps=[trader_selection],
    description=(
        "The newest selection written into MongoDB trader_watchlist (origin pin or selection), where the collectors "
        "(TRADER_WATCHLIST_SELECTION=true) read whom to follow beside their manual list; addresses no longer "
        "listed lose their document. A refused selection never gets here: the current list stays."
    ),
)
def trader_watchlist(
    context: dg.AssetExecutionContext, store: ParquetStore, mongo_db: MongoResource
) -> dg.MaterializeResult:
    (decisions,) = _latest(store, "trader_selection")
    listed = decisions.filter(pl.col("decision").is_in(LISTED))
    with mongo_db.get_db() as db:
        counts = write_listed(db, listed)
    context.log.info(f"trader_watchlist listed={listed.height} {counts}")
    return dg.MaterializeResult(metadata={"listed": listed.height, **counts})


@dg.asset_check(asset=leaderboard, blocking=True)
def leaderboard_one_row_per_address(store: ParquetStore) -> dg.AssetCheckResult:
    """The newest snapshot has one row per address (the selection is not made on a doubled one)."""
    (df,) = _latest(store, "leaderboard")
    dups = df.group_by("ethAddress").len().filter(pl.col("len") > 1).sort("ethAddress")
    return dg.AssetCheckResult(
        passed=dups.is_empty(),
        description=None if dups.is_empty() else f"{dups.height} addresses appear more than once",
        metadata={"duplicated_addresses": dups.height, "examples": dg.MetadataValue.md(markdown(dups))},
    )


@dg.asset_check(asset=leaderboard)
def leaderboard_not_much_smaller(store: ParquetStore) -> dg.AssetCheckResult:
    """The newest snapshot has at least SHRINK_WARN of the previous one's rows: a cut download must
    not pass as "most traders left"."""
    frames = _latest(store, "leaderboard", 2)
    rows, before = frames[-1].height, frames[0].height if len(frames) == 2 else None
    passed = before is None or rows >= SHRINK_WARN * before
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if passed else f"{rows} rows, the previous snapshot had {before} (< {SHRINK_WARN:.0%})",
        metadata={"rows": rows, "previous_rows": before if before is not None else -1},
    )


@dg.asset_check(asset=trader_selection)
def trader_selection_fresh_enough(store: ParquetStore) -> dg.AssetCheckResult:
    """Following the newest list with the collectors of ``[coverage]`` refreshes each polled trader
    within ``max_poll_period_s`` (a warning: the list is applied anyway)."""
    (decisions,) = _latest(store, "trader_selection")
    plan = load_selection_rules().coverage.plan(decisions.filter(pl.col("decision").is_in(LISTED)).height)
    return dg.AssetCheckResult(
        passed=plan.fresh,
        severity=dg.AssetCheckSeverity.WARN,
        description=describe_coverage(plan),
        metadata={k: v for k, v in plan.figures().items() if v is not None},
    )


leaderboard_job = dg.define_asset_job(
    "leaderboard_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Take a leaderboard snapshot and make the selection on it.",
)


@dg.schedule(
    job=leaderboard_job,
    cron_schedule=settings.read(LEADERBOARD_CRON_ENV),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def leaderboard_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """A leaderboard snapshot and selection (hourly by default, ORDERWATCH_LEADERBOARD_CRON)."""
    at = context.scheduled_execution_time
    return dg.RunRequest(run_key=f"leaderboard:{at:%Y-%m-%dT%H:%M}", tags={"orderwatch/trigger": "leaderboard"})


FIRST_SNAPSHOT_RUN_KEY = "leaderboard:first"


@dg.sensor(job=leaderboard_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def leaderboard_first_snapshot_sensor(store: ParquetStore) -> dg.RunRequest | dg.SkipReason:
    """A deployment without any leaderboard snapshot takes its first one (and makes its first
    selection) at once, not at the schedule's next hour. Requested once per Dagster instance (one
    run key): if that run fails, the schedule takes the next snapshot."""
    if store.snapshots("leaderboard"):
        return dg.SkipReason("a leaderboard snapshot exists; leaderboard_schedule takes the next ones")
    return dg.RunRequest(run_key=FIRST_SNAPSHOT_RUN_KEY, tags={"orderwatch/trigger": "first-leaderboard"})


leaderboard_assets = [leaderboard, trader_selection, trader_watchlist]
leaderboard_checks = [leaderboard_one_row_per_address, leaderboard_not_much_smaller, trader_selection_fresh_enough]
