"""Whom to follow: the selection rules file and the pure selection over one leaderboard snapshot.

``trader_selection.toml`` at the repository root (``ORDERWATCH_SELECTION_RULES`` overrides the
path) holds the cohorts the ``leaderboard`` table stamps on each account, the filters, the
ranking, the target size, the hysteresis, pins and excludes, and the collectors that will follow
the list (``[coverage]``: what following it will mean, by the collector's own formula).
:func:`select` turns a snapshot and the previous decisions into the new decisions, one row per
trader with its reason and numbers.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from pydantic import Field, field_validator, model_validator

from collector_service import schema
from orderwatch_dagster import tables
from orderwatch_dagster.leaderboard import FIELDS, WINDOWS, Cohorts, column
from orderwatch_dagster.rules import ADDRESS_RE, Strict, load_toml

SELECTION_ENV = "ORDERWATCH_SELECTION_RULES"
DEFAULT_SELECTION_PATH = Path(__file__).resolve().parents[1] / "trader_selection.toml"

SELECTED, KEPT, DROPPED, EXCLUDED, PINNED, CHALLENGER = (
    "selected",
    "kept by hysteresis",
    "dropped",
    "excluded",
    "pinned",
    "challenger",
)
LISTED = (SELECTED, KEPT, PINNED)
"""Decisions that put a trader on the list."""
METRICS = ("accountValue", *(f"{w}.{f}" for w in WINDOWS for f in FIELDS))


def metric_column(metric: str) -> str:
    """``accountValue`` or ``<window>.<pnl|roi|vlm>`` -> the leaderboard table's column."""
    if metric == "accountValue":
        return metric
    window, field = metric.split(".")
    return column(window, field)


class SelectionRefused(RuntimeError):
    """The new list would empty or shrink the current one too far (a bad snapshot); it stays."""


class Bands(Strict):
    """``[cohorts]``: name -> lower bound in USD (inclusive), ascending in file order."""

    size: dict[str, float] = Field(
        default_factory=lambda: {
            "Shrimp": 0.0,
            "Fish": 250,
            "Dolphin": 10_000,
            "Apex Predator": 50_000,
            "Small Whale": 100_000,
            "Whale": 500_000,
            "Tidal Whale": 1_000_000,
            "Leviathan": 5_000_000,
        }
    )
    pnl: dict[str, float] = Field(
        default_factory=lambda: {
            "Giga-Rekt": float("-inf"),
            "Full Rekt": -1_000_000,
            "Semi-Rekt": -100_000,
            "Exit Liquidity": -10_000,
            "Humble Earner": 0,
            "Grinder": 10_000,
            "Smart Money": 100_000,
            "Money Printer": 1_000_000,
        }
    )

    @field_validator("size", "pnl")
    @classmethod
    def _ascending(cls, v: dict[str, float]) -> dict[str, float]:
        bounds = list(v.values())
        if not bounds:
            raise ValueError("needs at least one cohort")
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"lower bounds must be strictly ascending in file order, got {bounds}")
        return v

    def size_cohorts(self) -> Cohorts:
        return Cohorts(list(self.size), list(self.size.values()))

    def pnl_cohorts(self) -> Cohorts:
        return Cohorts(list(self.pnl), list(self.pnl.values()))


def _windows(v: dict[str, float]) -> dict[str, float]:
    bad = [w for w in v if w not in WINDOWS]
    if bad:
        raise ValueError(f"unknown window {', '.join(bad)} (windows: {', '.join(WINDOWS)})")
    return v


class Active(Strict):
    """``[filters.active]``: the "likely active" test from the leaderboard alone (the seed's):
    |day roi| > ``min_day_roi`` or |day pnl| / accountValue > ``min_day_pnl_share`` or day volume >
    ``min_day_volume``."""

    required: bool = True
    min_day_roi: float = Field(default=0.0001, ge=0)
    min_day_pnl_share: float = Field(default=0.001, ge=0)
    min_day_volume: float = Field(default=100_000, ge=0)


class Filters(Strict):
    """``[filters]``: floors every selected trader passes (pins excepted)."""

    min_account_value: float = 10_000
    min_volume: dict[str, float] = Field(default_factory=lambda: {"month": 1_000_000.0})
    min_pnl: dict[str, float] = Field(default_factory=dict)
    min_roi: dict[str, float] = Field(default_factory=dict)
    active: Active = Active()

    _known_windows = field_validator("min_volume", "min_pnl", "min_roi")(_windows)


class Ranking(Strict):
    """``[ranking]``: score = sum of weight x the metric's percentile among the eligible (0..1),
    divided by the sum of the weights; one metric with weight 1 ranks by that metric."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "allTime.roi": 0.30,
            "month.roi": 0.25,
            "week.roi": 0.20,
            "accountValue": 0.15,
            "month.vlm": 0.10,
        }
    )

    @field_validator("weights")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [m for m in v if m not in METRICS]
        if bad:
            raise ValueError(f"unknown metric {', '.join(bad)} (metrics: {', '.join(METRICS)})")
        if not v or any(w <= 0 for w in v.values()):
            raise ValueError("needs at least one metric, every weight > 0")
        return v


class Hysteresis(Strict):
    """``[hysteresis]``: a listed trader is replaced only by a challenger whose score beats its own
    by ``margin`` on ``confirmations`` consecutive snapshots, and not before ``min_stay_h``."""

    margin: float = Field(default=0.05, ge=0, le=1)
    confirmations: int = Field(default=3, ge=1)
    min_stay_h: float = Field(default=24, ge=0)


class Deployment(Strict):
    """``[coverage]``: the collectors that will follow the list (each with the collector's default
    budget: 10 live traders per address, polls within 60 % of its 1,200 weight a minute) and the
    freshness wanted of a polled trader."""

    addresses: int = Field(default=1, ge=1)
    instances: int = Field(default=1, ge=1)
    node: bool = False
    max_poll_period_s: float = Field(default=300.0, gt=0)

    def plan(self, traders: int) -> schema.Coverage:
        """What following ``traders`` will mean (:func:`collector_service.schema.coverage`)."""
        return schema.coverage(traders, addresses=self.addresses, instances=self.instances, node=self.node,
                               max_poll_period_s=self.max_poll_period_s)


def describe_coverage(plan: schema.Coverage) -> str:
    """One sentence with the numbers, ending in a warning when the plan is not fresh enough."""
    text = f"{plan.traders} traders: {plan.live} live, {plan.polled} polled"
    if plan.expected_period_s is not None:
        text += f" ({plan.polled_per_address} per address, each refreshed every ~{plan.expected_period_s:.0f} s)"
    if not plan.fresh:
        text += (f"; slower than max_poll_period_s = {plan.max_poll_period_s:g} s: add addresses or instances, "
                 "a node, or list fewer traders")
    return text


class SelectionRules(Strict):
    """The whole selection rules file."""

    target: int = Field(default=500, gt=0)
    refuse_below_share: float = Field(default=0.5, gt=0, le=1)
    pins: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    cohorts: Bands = Bands()
    filters: Filters = Filters()
    ranking: Ranking = Ranking()
    hysteresis: Hysteresis = Hysteresis()
    coverage: Deployment = Deployment()

    @field_validator("pins", "excludes")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not ADDRESS_RE.match(a.lower())]
        if bad:
            raise ValueError(f"not a 0x address of 40 hex digits: {', '.join(bad)}")
        return sorted({a.lower() for a in v})

    @model_validator(mode="after")
    def _consistent(self) -> SelectionRules:
        both = set(self.pins) & set(self.excludes)
        if both:
            raise ValueError(f"pinned and excluded at once: {', '.join(sorted(both))}")
        if len(self.pins) > self.target:
            raise ValueError(f"{len(self.pins)} pins exceed target {self.target}")
        return self


def load_selection_rules(path: str | Path | None = None) -> SelectionRules:
    """The selection rules from ``path``, else ``$ORDERWATCH_SELECTION_RULES``, else the committed
    ``trader_selection.toml`` (errors name the file, key and problem)."""
    return load_toml(SelectionRules, DEFAULT_SELECTION_PATH, SELECTION_ENV, "selection rules", path)


# The selection ----------------------------------------------------------------------------------


def _f(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64)


def _why_not(f: Filters) -> pl.Expr:
    """Why a row fails the filters ("" when it passes)."""
    reasons: list[pl.Expr] = [
        pl.when(_f("accountValue") < f.min_account_value).then(
            pl.format(f"accountValue {{}} < {f.min_account_value:g}", _f("accountValue").round(0))
        )
    ]
    for floors, field in ((f.min_volume, "vlm"), (f.min_pnl, "pnl"), (f.min_roi, "roi")):
        for window, floor in floors.items():
            value = _f(column(window, field))
            reasons.append(pl.when(value < floor).then(pl.format(f"{window} {field} {{}} < {floor:g}", value.round(4))))
    a = f.active
    if a.required:
        active = (
            (_f("dayRoi").abs() > a.min_day_roi)
            | (_f("dayPnl").abs() / _f("accountValue") > a.min_day_pnl_share)
            | (_f("dayVlm") > a.min_day_volume)
        )
        reasons.append(pl.when(~active.fill_null(False)).then(pl.lit("not likely active (day roi, pnl, volume)")))
    return pl.concat_str(reasons, separator="; ", ignore_nulls=True)


def scored(board: pl.DataFrame, rules: SelectionRules) -> pl.DataFrame:
    """The snapshot with ``whyNot`` (filters failed, "" if none), and for eligible rows (passing,
    not pinned nor excluded) ``score`` and ``rank`` (1 = best; ties by address)."""
    df = board.lazy().with_columns(whyNot=_why_not(rules.filters))
    pool = pl.col("ethAddress").is_in(rules.pins + rules.excludes)
    eligible = df.filter((pl.col("whyNot") == "") & ~pool)
    total = sum(rules.ranking.weights.values())
    score = (
        pl.sum_horizontal(
            [w * _f(metric_column(m)).rank("average") / pl.len() for m, w in rules.ranking.weights.items()]
        )
        / total
    )
    ranked = (
        eligible.with_columns(score=score)
        .sort(["score", "ethAddress"], descending=[True, False])
        .with_row_index("rank", offset=1)
        .select("ethAddress", "score", pl.col("rank").cast(pl.UInt32))
    )
    return df.join(ranked, on="ethAddress", how="left").collect()


def select(board: pl.DataFrame, previous: pl.DataFrame, rules: SelectionRules, at: datetime) -> pl.DataFrame:
    """The decisions for snapshot ``board`` (the ``leaderboard`` table's rows of one snapshot) given
    the ``previous`` decisions (empty the first time): one row per pinned, excluded, listed,
    dropped or challenging trader, in the ``trader_selection`` table's schema.

    Raises :class:`SelectionRefused` when the list would shrink below ``refuse_below_share`` of
    the smaller of its current size and the target (a bad snapshot must not empty the list)."""
    h = rules.hysteresis
    slots = rules.target - len(rules.pins)
    board = scored(board, rules)
    # The traders the decisions can be about are few (listed, pins, excludes, the best challengers):
    # plain Python on those rows from here.
    prev = {r["ethAddress"]: r for r in previous.iter_rows(named=True)}
    members = {a: r for a, r in prev.items() if r["decision"] in (SELECTED, KEPT)}
    about = board.filter(
        (pl.col("rank") <= slots + len(members)) | pl.col("ethAddress").is_in([*members, *rules.pins, *rules.excludes])
    )
    info = {r["ethAddress"]: r for r in about.iter_rows(named=True)}
    streaks = {a: r["streak"] for a, r in prev.items() if r["decision"] == CHALLENGER}
    stay_until = {a: r["selectedSince"] + timedelta(hours=h.min_stay_h) for a, r in members.items()}
    out: list[dict] = []

    def decide(address: str, decision: str, reason: str, **numbers: object) -> None:
        row = info.get(address, {})
        since = prev[address]["selectedSince"] if address in members or (decision == PINNED and address in prev) else at
        out.append(
            {
                "ethAddress": address,
                "decision": decision,
                "reason": reason,
                "score": row.get("score"),
                "rank": row.get("rank"),
                "selectedSince": since if decision in LISTED else None,
                "label": row.get("displayName"),
                "tags": [t for t in (row.get("sizeCohort"), row.get("pnlCohort")) if t],
                "accountValue": row.get("accountValue"),
                "streak": None,
                "comparedWith": None,
                "comparedScore": None,
                **numbers,
            }
        )

    for address in rules.pins:
        decide(address, PINNED, "pinned in the rules" + ("" if address in info else "; not on the leaderboard"))
    for address in rules.excludes:
        decide(address, EXCLUDED, "excluded in the rules")
    kept: list[str] = []
    for address in members:
        if address in rules.pins or address in rules.excludes:
            continue
        row = info.get(address)
        if row is None:
            decide(address, DROPPED, "not on the leaderboard")
        elif row["rank"] is not None:
            kept.append(address)
        elif at < stay_until[address]:
            decide(address, KEPT, f"minimum stay until {stay_until[address]:%Y-%m-%d %H:%M}Z; fails: {row['whyNot']}")
        else:
            decide(address, DROPPED, f"fails: {row['whyNot']}")
    kept.sort(key=lambda a: info[a]["rank"])
    for address in kept[slots:]:
        decide(address, DROPPED, f"rank {info[address]['rank']}: beyond the target of {slots} slots")
    kept = kept[:slots]
    held = slots - len(kept) - sum(1 for r in out if r["decision"] == KEPT)
    challengers = (
        about.filter(pl.col("rank").is_not_null() & ~pl.col("ethAddress").is_in(list(members)))
        .sort("rank")
        .head(max(held, 0) + len(kept))["ethAddress"]
        .to_list()
    )
    for address in challengers[: max(held, 0)]:
        decide(address, SELECTED, f"rank {info[address]['rank']}: a free slot")
    challengers = challengers[max(held, 0) :]
    # Pair the best challenger with the weakest incumbent that may leave, the second with the
    # second weakest, ...: a challenger replaces its incumbent only after `confirmations`
    # consecutive snapshots of beating it by the margin.
    weakest = sorted((a for a in kept if at >= stay_until[a]), key=lambda a: -info[a]["rank"])
    replaced: set[str] = set()
    for challenger, incumbent in zip(challengers, weakest, strict=False):
        c, w = info[challenger]["score"], info[incumbent]["score"]
        if c < w + h.margin:
            break
        streak = streaks.get(challenger, 0) + 1
        numbers = {"streak": streak, "comparedWith": incumbent, "comparedScore": w}
        if streak < h.confirmations:
            decide(
                challenger,
                CHALLENGER,
                f"beats {incumbent} by {c - w:.3f} >= {h.margin:g}: {streak} of {h.confirmations} snapshots",
                **numbers,
            )
            continue
        replaced.add(incumbent)
        decide(
            challenger, SELECTED, f"replaces {incumbent}: beat it by >= {h.margin:g} on {streak} snapshots", **numbers
        )
        decide(
            incumbent,
            DROPPED,
            f"replaced by {challenger} (score {c:.3f} vs {w:.3f})",
            comparedWith=challenger,
            comparedScore=c,
        )
    for address in kept:
        if address in replaced:
            continue
        rank = info[address]["rank"]
        if rank <= slots:
            decide(address, SELECTED, f"rank {rank} within the top {slots}")
        elif at < stay_until[address]:
            decide(address, KEPT, f"rank {rank}; minimum stay until {stay_until[address]:%Y-%m-%d %H:%M}Z")
        else:
            decide(address, KEPT, f"rank {rank}; no challenger beat it by {h.margin:g} on {h.confirmations} snapshots")
    decisions = pl.DataFrame(
        out, schema_overrides={"accountValue": tables.LEADERBOARD_DECIMAL}, infer_schema_length=None
    )
    decisions = tables.conform(decisions.with_columns(snapshotAt=pl.lit(at)), tables.TRADER_SELECTION).collect()
    listed = decisions.filter(pl.col("decision").is_in(LISTED)).height
    before = sum(1 for r in prev.values() if r["decision"] in LISTED)
    floor = rules.refuse_below_share * min(before, rules.target)
    if before and listed < floor:
        raise SelectionRefused(
            f"the new list would have {listed} traders, the current one has {before}: below "
            f"{rules.refuse_below_share:g} x {min(before, rules.target)}; the snapshot ({board.height} rows) is "
            "probably incomplete, the current list stays"
        )
    return decisions.sort("decision", "rank", "ethAddress", nulls_last=True)
