"""The ``trader_account_days`` and ``trader_scorecards`` tables: a trader's account value per day,
and per trader and window (1, 7, 30 days, since followed) what a follower decides with: realized
and unrealized PnL apart, fees, volume, round trips, drawdown and volatility, leverage, and
orderwatch's own order-behaviour figures.

Everything but the day's account samples and the latest marks comes from the Parquet tables
already built (``fills``, ``order_lifecycles``, ``positions_snapshot``, ``trader_account_days``),
each read once (only the columns in use); every figure is a vectorised aggregation per trader over
each window's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import polars as pl

from collector_service import schema
from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.transforms.common import with_labels

RAW_ACCOUNT_SCHEMA = pl.Schema(
    {
        "ethAddress": pl.String(),
        "dex": pl.String(),
        "accountValue": pl.String(),
        "totalNtlPos": pl.String(),
        "totalRawUsd": pl.String(),
        "serverTime": tables.UTC_TS,
    }
)
"""``trader_accounts`` documents as read (schema.ACCOUNTS): decimals still the exchange's strings."""

MARKS_SCHEMA = pl.Schema({"coin": pl.String(), "markPx": pl.String(), "at": tables.UTC_TS})
"""``market_marks`` documents as read: ``_id`` renamed ``coin``."""

WINDOW_DAYS = {"1d": 1, "7d": 7, "30d": 30}
"""The fixed windows' lengths; the fourth window, ``followed``, starts at followedSince."""

SPOT_DIRS = ("Buy", "Sell")
"""``dir`` of spot fills: no position, so no round trip."""

KEY = ["ethAddress", "window"]
FILL_INPUTS = ["ethAddress", "coin", "time", "tid", "side", "sz", "startPosition", "closedPnl", "dir", "notionalUsd",
               "feeUsd", "isMaker", "source", "observedAt", "createdAt"]
LIFECYCLE_INPUTS = ["ethAddress", "rootOid", "oid", "placedAt", "closedAt", "outcome", "firstFillAt", "distanceBps",
                    "seenInEvents", "firstSeenAt", "partitionDay"]
"""The columns of ``fills`` and ``order_lifecycles`` the scorecards use."""
ZERO = pl.lit(0).cast(tables.DECIMAL)


def trader_account_days(accounts: pl.DataFrame | pl.LazyFrame, day: str | date) -> pl.DataFrame:
    """Per (trader, dex): the day's account value samples (by ``serverTime``) as open / high / low /
    close, the intraday maximum drawdown, and the last sample's total position notional and cash
    (``totalRawUsd``: what values the day's end positions, see ``_unrealized``)."""
    start, end = day_bounds(day)
    value = pl.col("value")
    lf = (
        accounts.lazy()
        .filter((pl.col("serverTime") >= start) & (pl.col("serverTime") < end))
        .with_columns(value=pl.col("accountValue").cast(pl.Float64), ntl=pl.col("totalNtlPos").cast(pl.Float64))
        .sort(["ethAddress", "dex", "serverTime"])
        .with_columns(peak=value.cum_max().over(["ethAddress", "dex"]))
        .group_by(["ethAddress", "dex"])
        .agg(
            samples=pl.len(),
            firstAt=pl.col("serverTime").first(),
            lastAt=pl.col("serverTime").last(),
            openValue=value.first(),
            highValue=value.max(),
            lowValue=value.min(),
            closeValue=value.last(),
            maxDrawdown=_drawdown(value, pl.col("peak")).max(),
            closeNtlPos=pl.col("ntl").last(),
            closeRawUsd=pl.col("totalRawUsd").cast(pl.Float64).last(),
        )
        .with_columns(day=pl.lit(date.fromisoformat(str(day))))
    )
    return lf.pipe(tables.conform, tables.TRADER_ACCOUNT_DAYS).sort(["ethAddress", "dex"]).collect()


def _drawdown(value: pl.Expr, peak: pl.Expr) -> pl.Expr:
    """The fall from ``peak`` to ``value`` as a fraction of the peak, never below 0."""
    return pl.when(peak > 0).then((1 - value / peak).clip(lower_bound=0.0)).otherwise(0.0)


def followed_since(
    fills: pl.LazyFrame, lifecycles: pl.LazyFrame, account_days: pl.LazyFrame
) -> pl.LazyFrame:
    """Per trader, the first time orderwatch observed it: its first order chain seen in events, fill
    or account sample. A streamed fill (WebSocket or node) counts at its own time; a fill recovered
    over REST (a backfill reaches back before following began) when it was received."""
    received = pl.coalesce("observedAt", "createdAt")
    firsts = [
        fills.select("ethAddress", at=pl.when(pl.col("source") == schema.SOURCE_REST).then(received).otherwise("time")),
        lifecycles.filter(pl.col("seenInEvents")).select("ethAddress", at=pl.col("firstSeenAt")),
        account_days.select("ethAddress", at=pl.col("firstAt")),
    ]
    return pl.concat(firsts).group_by("ethAddress").agg(followedSince=pl.col("at").min()).drop_nulls()


def _windows(followed: pl.LazyFrame, end: datetime) -> pl.LazyFrame:
    """One row per (trader, window) with the window's start and end and whether following began
    after its start."""
    fixed = pl.LazyFrame(
        {"window": list(WINDOW_DAYS), "windowStart": [end - timedelta(days=n) for n in WINDOW_DAYS.values()]},
        schema={"window": pl.String(), "windowStart": tables.UTC_TS},
    )
    since = followed.select("ethAddress", "followedSince", window=pl.lit("followed"), windowStart="followedSince")
    return (
        pl.concat([followed.join(fixed, how="cross"), since], how="diagonal")
        .with_columns(windowEnd=pl.lit(end, dtype=tables.UTC_TS))
        .with_columns(partial=pl.col("followedSince") > pl.col("windowStart"))
    )


def _per_window(
    lf: pl.LazyFrame,
    followed: pl.LazyFrame,
    end: datetime,
    at: str,
    figures: Callable[[pl.LazyFrame], pl.LazyFrame],
    *,
    days: bool = False,
) -> pl.LazyFrame:
    """``figures`` (grouped by ``ethAddress``) of ``lf``'s rows in each window of their trader:
    ``at`` in [start, end) (``days``: ``at`` is a date, compared with the bounds' days). Each window
    filters ``lf`` once; only the ``followed`` window, whose start is the trader's, needs a join
    (rather than joining every row to its trader's four windows)."""

    def inside(start: pl.Expr) -> pl.Expr:
        stop = pl.lit(end, dtype=tables.UTC_TS)
        if days:
            start, stop = start.dt.date(), stop.dt.date()
        return (pl.col(at) >= start) & (pl.col(at) < stop)

    fixed = [
        figures(lf.filter(inside(pl.lit(end - timedelta(days=n), dtype=tables.UTC_TS)))).with_columns(
            window=pl.lit(window)
        )
        for window, n in WINDOW_DAYS.items()
    ]
    since = figures(lf.join(followed, on="ethAddress").filter(inside(pl.col("followedSince"))))
    return pl.concat([*fixed, since.with_columns(window=pl.lit("followed"))])


def round_trips(fills: pl.LazyFrame) -> pl.LazyFrame:
    """Perp round trips from the fills' ``startPosition``, ``sz`` and ``side``: a trip opens on a fill
    from flat (or on a flip) and closes on the fill back to flat (or the flip, whose closedPnl is the
    closing trip's). Only trips whose opening fill is in ``fills``: ``ethAddress, coin, openAt,
    closeAt, pnl`` (trader and coin Categorical)."""
    start = pl.col("startPosition")
    end = start + pl.when(pl.col("side") == "B").then(pl.col("sz")).otherwise(-pl.col("sz"))
    by_coin = ["ethAddress", "coin"]
    lf = (
        fills.filter(~pl.col("dir").is_in(SPOT_DIRS))
        # Categorical (trader, coin): the window, group and join keys below are integers; the
        # signs are computed before the sort so that it moves fewer columns.
        .select(pl.col(by_coin).cast(pl.Categorical), "time", "tid", "closedPnl", s0=_sign(start), e0=_sign(end))
        .sort("time", "tid")  # the windows over (trader, coin) below keep this order within each
        .with_columns(
            opens=(pl.col("s0") == 0) & (pl.col("e0") != 0),
            flip=(pl.col("s0") * pl.col("e0")) < 0,
            closes=(pl.col("s0") != 0) & (pl.col("e0") != pl.col("s0")),
        )
        .with_columns(trip=(pl.col("opens") | pl.col("flip")).cast(pl.UInt32).cum_sum().over(by_coin))
        .with_columns(pnlTrip=pl.col("trip") - pl.col("flip").cast(pl.UInt32))
    )
    opened = lf.filter(pl.col("opens") | pl.col("flip")).select(*by_coin, "trip", openAt="time")
    closed = (
        lf.group_by([*by_coin, "pnlTrip"])
        .agg(pnl=pl.col("closedPnl").sum(), closeAt=pl.col("time").filter(pl.col("closes")).first())
        .filter(pl.col("closeAt").is_not_null())
    )
    return closed.join(opened, left_on=[*by_coin, "pnlTrip"], right_on=[*by_coin, "trip"]).select(
        *by_coin, "openAt", "closeAt", "pnl"
    )


def _sign(x: pl.Expr) -> pl.Expr:
    return (x > ZERO).cast(pl.Int8) - (x < ZERO).cast(pl.Int8)


def _fill_figures(fills: pl.LazyFrame, followed: pl.LazyFrame, end: datetime) -> pl.LazyFrame:
    notional = pl.col("notionalUsd")
    return _per_window(
        fills,
        followed,
        end,
        "time",
        lambda lf: lf.group_by("ethAddress").agg(
            fills=pl.len(),
            volumeUsd=notional.sum(),
            realizedPnl=pl.col("closedPnl").sum(),
            fees=pl.col("feeUsd").sum(),
            makerShare=notional.filter(pl.col("isMaker")).sum() / notional.sum(),
        ),
    )


def _trip_figures(fills: pl.LazyFrame, followed: pl.LazyFrame, end: datetime) -> pl.LazyFrame:
    pnl = pl.col("pnl").cast(pl.Float64)
    hold = (pl.col("closeAt") - pl.col("openAt")).dt.total_microseconds() / 1e6
    losses = -pnl.filter(pnl < 0).sum()
    trips = round_trips(fills).collect().lazy()  # once, not once per window
    return _per_window(
        trips,
        followed,
        end,
        "closeAt",
        lambda lf: lf.group_by("ethAddress").agg(
            roundTrips=pl.len(),
            wins=(pnl > 0).sum(),
            profitFactor=pl.when(losses > 0).then(pnl.filter(pnl > 0).sum() / losses),
            avgHoldS=hold.mean(),
            medianHoldS=hold.median(),
        ),
    ).with_columns(winRate=pl.col("wins") / pl.col("roundTrips"))


def _order_figures(lifecycles: pl.LazyFrame, followed: pl.LazyFrame, day: str | date) -> pl.LazyFrame:
    """Chains seen in events and placed in the window, each in its final state: a chain is in every
    day's partition while open and in the day's it closed, so its closed row, or the day's own row
    while still open (no window over all chains to find the newest: that was most of the time)."""
    final = pl.col("closedAt").is_not_null() | (pl.col("partitionDay") == date.fromisoformat(str(day)))
    latest = lifecycles.select(
        "ethAddress", "rootOid", "oid", "placedAt", "closedAt", "outcome", "firstFillAt", "distanceBps",
        "seenInEvents", "partitionDay",
    ).filter(pl.col("seenInEvents") & final)  # fmt: skip
    to_first_fill = (pl.col("firstFillAt") - pl.col("placedAt")).dt.total_microseconds() / 1e6
    return _per_window(
        latest,
        followed,
        day_bounds(day)[1],
        "placedAt",
        lambda lf: lf.group_by("ethAddress").agg(
            ordersPlaced=pl.len(),
            cancelRatio=(pl.col("outcome") == "canceled").mean(),
            modifyRate=(pl.col("oid") != pl.col("rootOid")).mean(),
            medianTimeToFirstFillS=to_first_fill.median(),
            medianDistanceBps=pl.col("distanceBps").median(),
        ),
    )


def _account_figures(account_days: pl.LazyFrame, followed: pl.LazyFrame, end: datetime) -> pl.LazyFrame:
    """Drawdown and volatility of the main-dex account value. The window's maximum drawdown is
    exact from daily figures: a peak and a trough on one day are that day's ``maxDrawdown``; a
    peak on an earlier day of the window is that day's high against this day's low."""
    main = (
        account_days.filter(pl.col("dex") == schema.MAIN_DEX)
        .sort(["ethAddress", "day"])
        .with_columns(ret=pl.col("closeValue") / pl.col("closeValue").shift(1).over("ethAddress") - 1)
    )
    prior_high = pl.col("highValue").cum_max().shift(1).over("ethAddress", order_by="day")
    return _per_window(
        main,
        followed,
        end,
        "day",
        lambda lf: lf.with_columns(across=_drawdown(pl.col("lowValue"), prior_high))
        .group_by("ethAddress")
        .agg(
            accountValue=pl.col("closeValue").sort_by("day").last(),
            maxDrawdown=pl.max_horizontal(pl.col("maxDrawdown").max(), pl.col("across").max()),
            returnVolatility=pl.col("ret").drop_nulls().std(),
        ),
        days=True,
    )


def _leverage_figures(positions: pl.LazyFrame, followed: pl.LazyFrame, end: datetime) -> pl.LazyFrame:
    value = pl.col("positionValue").cast(pl.Float64).abs()
    return _per_window(
        positions,
        followed,
        end,
        "partitionDay",
        lambda lf: lf.group_by("ethAddress").agg(
            leverageAvg=(pl.col("leverage") * value).sum() / value.sum(),
            leverageMax=pl.col("leverage").max(),
        ),
        days=True,
    )


def _unrealized(
    positions: pl.LazyFrame, account_days: pl.LazyFrame, marks: pl.DataFrame, day: str | date
) -> pl.LazyFrame:
    """Per trader at the day's end: unrealized PnL of the open positions and the time its prices
    are from (``unrealizedAsOf``), worked out per (trader, dex) in one of two ways:

    - From the day's last account sample, when it was taken at or after the last change of every
      position of that dex (exchange clock) and all of them are cross margined: accountValue =
      totalRawUsd + sum(szi x mark) (the clearinghouseState samples in tests/fixtures and the
      simulator), so the unrealized PnL at that sample is closeValue - closeRawUsd -
      sum(szi x entryPx); as of the sample's time. The collector samples every position change
      and otherwise once a minute of the states it receives, so that is normally within about a
      minute of the day's end, and never older than the positions' own figures (as of their last
      change), whenever the day is built: what a day built after midnight (the nightly run, a
      rebuild) has, since ``market_marks`` then holds only later marks.
    - Else, or when every position of the dex has a ``market_marks`` mark served after its last
      update, before the day's end and after the account sample (the intraday build of today:
      marks are renewed every few seconds, samples once a minute): each position at
      szi x (mark - entryPx) with such a mark (the newer price wins), else at its own
      ``unrealizedPnl`` as last reported; as of the oldest of those prices.

    Isolated margin: no real clearinghouseState here shows an isolated position, so whether
    ``marginSummary.totalRawUsd`` holds its ``leverage.rawUsd`` is unverified; a dex with one keeps
    the second way rather than risk a wrong figure."""
    _, end = day_bounds(day)
    today = date.fromisoformat(str(day))
    fresh = (pl.col("at") >= pl.col("updatedAt")) & (pl.col("at") < end)
    szi, entry = pl.col("szi").cast(pl.Float64), pl.col("entryPx").cast(pl.Float64)
    closes = account_days.filter(pl.col("day") == today).select(
        "ethAddress", "dex", "lastAt", "closeValue", "closeRawUsd"
    )
    per_dex = (
        positions.filter(pl.col("partitionDay") == today)
        .join(marks.lazy().with_columns(mark=pl.col("markPx").cast(pl.Float64)), on="coin", how="left")
        .with_columns(fresh=fresh.fill_null(False))
        .group_by("ethAddress", "dex")
        .agg(
            marked=pl.when("fresh").then(szi * (pl.col("mark") - entry))
            .otherwise(pl.col("unrealizedPnl").cast(pl.Float64))
            .sum(),
            markedAsOf=pl.when("fresh").then(pl.col("at")).otherwise(pl.col("updatedAt")).min(),
            allMarked=pl.col("fresh").all(),
            allCross=(pl.col("leverageType") == "cross").fill_null(False).all(),
            changedAt=pl.col("serverTime").max(),
            entryNtl=(szi * entry).sum(),
            openPositions=pl.len(),
        )
        .join(closes, on=["ethAddress", "dex"], how="left")
    )
    sampled = pl.col("allCross") & (pl.col("lastAt") >= pl.col("changedAt")) & pl.col("closeRawUsd").is_not_null()
    by_sample = (sampled & ~(pl.col("allMarked") & (pl.col("markedAsOf") > pl.col("lastAt")))).fill_null(False)
    return per_dex.group_by("ethAddress").agg(
        unrealizedPnl=pl.when(by_sample)
        .then(pl.col("closeValue") - pl.col("closeRawUsd") - pl.col("entryNtl"))
        .otherwise("marked")
        .sum(),
        unrealizedAsOf=pl.when(by_sample).then(pl.col("lastAt")).otherwise("markedAsOf").min(),
        openPositions=pl.col("openPositions").sum(),
    )


def trader_scorecards(
    day: str | date,
    *,
    fills: pl.LazyFrame,
    lifecycles: pl.LazyFrame,
    positions: pl.LazyFrame,
    account_days: pl.LazyFrame,
    marks: pl.DataFrame,
    watchlist: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per (trader, window) for every trader observed up to the day's end, on the watch list
    or not any more (no survivorship bias).

    ``fills``, ``lifecycles`` (with ``partitionDay``), ``positions`` (``positions_snapshot`` with
    ``partitionDay``) and ``account_days`` are those tables' partitions up to ``day``; ``marks`` is
    ``market_marks`` (``coin, markPx, at``).
    """
    _, end = day_bounds(day)
    # Each table is read once, only its columns in use: the figures below share them (left lazy,
    # polars planned the scans behind the windows once per figure: 17 Parquet scans). The trader
    # is Categorical throughout (integer group and join keys); the output is conformed to String.
    trader = pl.col("ethAddress").cast(pl.Categorical)
    fills = fills.filter(pl.col("time") < end).select(FILL_INPUTS).with_columns(trader).collect().lazy()
    lifecycles = lifecycles.select(LIFECYCLE_INPUTS).filter("seenInEvents").with_columns(trader).collect().lazy()
    account_days = account_days.with_columns(trader).collect().lazy()
    positions = positions.with_columns(trader)
    followed = followed_since(fills, lifecycles, account_days).collect().lazy()
    per_window = [
        _fill_figures(fills, followed, end),
        _trip_figures(fills, followed, end),
        _order_figures(lifecycles, followed, day),
        _account_figures(account_days, followed, end),
        _leverage_figures(positions, followed, end),
    ]
    out = _windows(followed, end)
    for figures in per_window:
        out = out.join(figures, on=KEY, how="left")
    counts = ["fills", "roundTrips", "wins", "ordersPlaced", "openPositions"]
    out = (
        out.join(_unrealized(positions, account_days, marks, day), on="ethAddress", how="left")
        .with_columns([pl.col(c).fill_null(0) for c in counts])
        .with_columns(
            volumeUsd=pl.col("volumeUsd").fill_null(0.0),
            realizedPnl=pl.col("realizedPnl").fill_null(ZERO),
            fees=pl.col("fees").fill_null(ZERO),
            unrealizedPnl=pl.col("unrealizedPnl").fill_null(0.0),
        )
    )
    order = pl.col("window").replace_strict(tables.SCORECARD_WINDOWS, list(range(len(tables.SCORECARD_WINDOWS))))
    return (
        out.pipe(with_labels, watchlist)
        .pipe(tables.conform, tables.TRADER_SCORECARDS)
        .sort(["ethAddress", order])
        .collect()
    )


LEADERBOARD_WINDOWS = {"1d": "dayPnl", "7d": "weekPnl", "30d": "monthPnl"}
"""Which leaderboard PnL each scorecard window is compared with."""
LEADERBOARD_TOLERANCE_USD = 100.0
LEADERBOARD_TOLERANCE_SHARE = 0.05
"""Realized PnL agrees with the leaderboard's when within max($100, 5 % of the leaderboard's figure)."""


def leaderboard_disagreements(cards: pl.DataFrame, board: pl.DataFrame) -> tuple[int, pl.DataFrame]:
    """Compare each fully covered (not ``partial``) 1d / 7d / 30d window's realized PnL with the
    leaderboard snapshot's day / week / month PnL for the traders in both. Returns how many were
    compared and the rows beyond the tolerance, each with the likely reason."""
    theirs = board.unpivot(
        index="ethAddress", on=list(LEADERBOARD_WINDOWS.values()), variable_name="field", value_name="leaderboardPnl"
    ).with_columns(
        window=pl.col("field").replace_strict({v: k for k, v in LEADERBOARD_WINDOWS.items()}),
        leaderboardPnl=pl.col("leaderboardPnl").cast(pl.Float64),
    )
    compared = cards.filter(~pl.col("partial")).join(theirs, on=KEY).drop_nulls("leaderboardPnl")
    ours = pl.col("realizedPnl").cast(pl.Float64)
    lb = pl.col("leaderboardPnl")
    tolerance = pl.max_horizontal(pl.lit(LEADERBOARD_TOLERANCE_USD), LEADERBOARD_TOLERANCE_SHARE * lb.abs())
    reason = (
        pl.when((ours + pl.col("unrealizedPnl") - lb).abs() <= tolerance)
        .then(pl.lit("the leaderboard's PnL includes unrealized PnL: ours plus unrealized agrees"))
        .when(pl.col("fills") == 0)
        .then(pl.lit("no fills of ours in the window: fills missing, or the leaderboard's PnL is funding or "
                     "unrealized only"))
        .otherwise(pl.lit("the leaderboard's PnL includes funding and unrealized PnL changes, over a rolling "
                          "window ending at the snapshot rather than whole UTC days"))
    )
    bad = (
        compared.filter((ours - lb).abs() > tolerance)
        .select("ethAddress", "window", realizedPnl=ours, leaderboardPnl=lb, difference=ours - lb, reason=reason)
        .sort("ethAddress", "window")
    )
    return compared.height, bad
