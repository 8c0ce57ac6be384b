"""Charts of the daily tables: polars frames in, PNG bytes out.

matplotlib on its Agg canvas (no display, no pyplot state): each chart builds its own
:class:`~matplotlib.figure.Figure` under one small style, so the same frame always gives the
same bytes. Times are UTC, money is USD, and a day without rows gives a chart that says so.
The assets put one chart per table in their materialization metadata (:data:`TABLE_CHARTS`);
the daily report (:mod:`orderwatch_dagster.report`) uses the same functions.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, HourLocator, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from orderwatch_dagster.partitions import day_bounds

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in grey print.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#8C8C8C",
)
ACTION_COLORS = {"new": BLUE, "updated": ORANGE, "closed": GREY}
OUTCOME_COLORS = {
    "filled": GREEN,
    "canceled": VERMILLION,
    "rejected": PURPLE,
    "triggered": ORANGE,
    "open": BLUE,
    "unknown": GREY,
}
WIDTH_IN = 8.0
ROW_IN = 0.28
"""Height per trader row in the per-trader bar charts."""
MAX_TRADERS = 15
"""Per-trader charts show the largest traders; the title says how many were left out."""
MAX_DOTS = 500
"""The alert timeline draws the largest changes only: it stays legible and its PNG small."""
METADATA_DPI = 90
"""About 720 px wide: readable in the Dagster UI, a few tens of KB in its event log."""

LEGEND_OUTSIDE: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}
"""Legends right of the plot, never over the data."""
STYLE: dict[Any, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.facecolor": "white",
    "svg.hashsalt": "orderwatch",
}


@contextmanager
def _figure(height_in: float = 3.4) -> Iterator[tuple[Figure, Axes]]:
    """A figure with one axes, built under :data:`STYLE` (rc settings apply at creation)."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig, fig.add_subplot()


def png(fig: Figure, dpi: int = METADATA_DPI) -> bytes:
    """The figure as PNG bytes (no software/date metadata: same figure, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def data_uri(png_bytes: bytes) -> str:
    """A ``data:`` URI for an ``<img src>`` or a markdown image."""
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def markdown_image(png_bytes: bytes, alt: str) -> str:
    """Markdown embedding the image inline (how Dagster metadata carries a chart)."""
    return f"![{alt}]({data_uri(png_bytes)})"


def no_data(title: str) -> Figure:
    """A small chart that says the day has no rows for it."""
    with _figure(1.6) as (fig, ax):
        ax.set_title(title)
        ax.text(0.5, 0.5, "no data for this day", ha="center", va="center", color=GREY, fontsize=11)
        ax.set_axis_off()
    return fig


def trader_name(df: pl.DataFrame) -> pl.Expr:
    """The trader's watch-list label when the frame has one, else the shortened address."""
    short = pl.col("ethAddress").str.slice(0, 6) + "…" + pl.col("ethAddress").str.slice(-4)
    return (pl.coalesce(pl.col("label"), short) if "label" in df.columns else short).alias("trader")


def usd(value: float, _pos: object = None) -> str:
    """Compact USD: $950, $12.3k, $4.5M."""
    size = abs(value)
    if size >= 1e9:
        return f"${value / 1e9:.1f}B"
    if size >= 1e6:
        return f"${value / 1e6:.1f}M"
    if size >= 1e3:
        return f"${value / 1e3:.1f}k"
    return f"${value:.0f}"


def _title(text: str, shown: int, total: int) -> str:
    return text if shown >= total else f"{text} (largest {shown} of {total})"


def _stacked_by_trader(
    wide: pl.DataFrame, parts: Sequence[tuple[str, str, str]], *, title: str, xlabel: str, money: bool
) -> Figure:
    """Horizontal bars per trader (column ``trader``), one stacked segment per ``(column, legend, colour)``,
    the largest totals on top."""
    if wide.is_empty():
        return no_data(title)
    total = sum(pl.col(c).abs() for c, _, _ in parts)
    ranked = wide.with_columns(_total=total).sort("_total", "trader", descending=[True, False])
    top = ranked.head(MAX_TRADERS).reverse()
    with _figure(1.2 + ROW_IN * top.height) as (fig, ax):
        y = np.arange(top.height)
        left = np.zeros(top.height)
        for col, legend, colour in parts:
            values = top[col].fill_null(0).to_numpy().astype(float)
            ax.barh(y, values, left=left, color=colour, label=legend, height=0.7)
            left += values
        ax.set_yticks(y, top["trader"].to_list())
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        if money:
            ax.xaxis.set_major_formatter(FuncFormatter(usd))
        ax.set_title(_title(title, top.height, ranked.height))
        ax.legend(**LEGEND_OUTSIDE)
    return fig


def events_per_hour(events: pl.DataFrame, day: str | date) -> Figure:
    """order_events: events per UTC hour, stacked by action (new / updated / closed)."""
    title = f"Order events per hour, {day} (UTC)"
    if events.is_empty():
        return no_data(title)
    counts = events.group_by(pl.col("eventAt").dt.hour().alias("hour"), "action").len()
    with _figure() as (fig, ax):
        hours = np.arange(24)
        bottom = np.zeros(24)
        for action, colour in ACTION_COLORS.items():
            per_hour = dict(counts.filter(pl.col("action") == action).select("hour", "len").iter_rows())
            values = np.array([per_hour.get(h, 0) for h in hours], dtype=float)
            ax.bar(hours, values, bottom=bottom, color=colour, label=action, width=0.85)
            bottom += values
        ax.set_xticks(hours[::2], [f"{h:02d}:00" for h in hours[::2]])
        ax.set_xlim(-0.6, 23.6)
        ax.set_xlabel("hour of day (UTC)")
        ax.set_ylabel("events per hour")
        ax.set_title(title)
        ax.legend(**LEGEND_OUTSIDE)
    return fig


def trader_activity(events: pl.DataFrame, day: str | date) -> Figure:
    """Events per trader per UTC hour as a heatmap (a ``label`` column names the traders)."""
    title = f"Activity per trader, {day}: order events per hour (UTC)"
    if events.is_empty():
        return no_data(title)
    counts = events.group_by(trader_name(events), pl.col("eventAt").dt.hour().alias("hour")).len()
    totals = counts.group_by("trader").agg(pl.col("len").sum()).sort("len", "trader", descending=[True, False])
    names = totals.head(MAX_TRADERS)["trader"].to_list()
    grid = np.zeros((len(names), 24))
    row = {name: i for i, name in enumerate(names)}
    for trader, hour, n in counts.filter(pl.col("trader").is_in(names)).iter_rows():
        grid[row[trader], hour] = n
    with _figure(1.3 + ROW_IN * len(names)) as (fig, ax):
        image = ax.imshow(grid, aspect="auto", cmap="Blues", interpolation="nearest", vmin=0)
        ax.set_yticks(range(len(names)), names)
        ax.set_xticks(range(0, 24, 2), [f"{h:02d}:00" for h in range(0, 24, 2)])
        ax.set_xlabel("hour of day (UTC)")
        ax.grid(False)
        ax.set_title(_title(title, len(names), totals.height))
        fig.colorbar(image, ax=ax, label="events per hour", pad=0.01)
    return fig


LIFETIME_TICKS: dict[float, str] = {
    0.1: "≤0.1 s",  # shorter lifetimes are drawn at 0.1 s (a log axis has no 0)
    1: "1 s",
    10: "10 s",
    60: "1 min",
    600: "10 min",
    3600: "1 h",
    86_400: "1 d",
}


def lifetimes(lifecycles: pl.DataFrame, day: str | date) -> Figure:
    """order_lifecycles: how long the orders that closed that day lived (placement to close), stacked by
    outcome, on log-spaced bins."""
    title = f"Order lifetime of the orders closed on {day}"
    closed = lifecycles.filter(pl.col("closedAt").is_not_null() & pl.col("durationS").is_not_null())
    if closed.is_empty():
        return no_data(title)
    seconds = closed["durationS"].clip(lower_bound=0.1).to_numpy()
    edges = np.logspace(-1, max(np.log10(seconds.max()) + 0.05, 1.0), 36)
    with _figure() as (fig, ax):
        stacks, colours, labels = [], [], []
        for outcome, colour in OUTCOME_COLORS.items():
            part = closed.filter(pl.col("outcome") == outcome)["durationS"].clip(lower_bound=0.1).to_numpy()
            if part.size:
                stacks.append(part)
                colours.append(colour)
                labels.append(f"{outcome} ({part.size})")
        ax.hist(stacks, bins=edges.tolist(), stacked=True, color=colours, label=labels)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(list(LIFETIME_TICKS)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: LIFETIME_TICKS.get(round(v, 1), "")))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))
        ax.set_xlabel("lifetime, placement to close (log scale)")
        ax.set_ylabel("orders")
        ax.set_title(title)
        ax.legend(**LEGEND_OUTSIDE)
    return fig


def large_changes(alerts: pl.DataFrame, day: str | date) -> Figure:
    """large_change_alerts on a UTC timeline: one row per trader, one dot per alert, its area by the
    size of the notional change and its colour by the event's action."""
    title = f"Large changes on {day}" + (
        f" (largest {MAX_DOTS} of {alerts.height})" if alerts.height > MAX_DOTS else ""
    )
    if alerts.is_empty():
        return no_data(title)
    named = (
        alerts.with_columns(trader_name(alerts), pl.col("changeUsd").abs().fill_null(0).alias("size"))
        .sort("size", "eventAt", descending=[True, False])
        .head(MAX_DOTS)
    )
    names = named.group_by("trader").len().sort("len", "trader", descending=[True, False]).head(MAX_TRADERS)
    shown = sorted(names["trader"].to_list(), reverse=True)
    row = {name: i for i, name in enumerate(shown)}
    biggest = max(float(named["size"].max()), 1.0)  # type: ignore[arg-type]
    start = day_bounds(day)[0].replace(tzinfo=None)
    with _figure(1.4 + ROW_IN * len(shown)) as (fig, ax):
        for action, colour in ACTION_COLORS.items():
            part = named.filter((pl.col("action") == action) & pl.col("trader").is_in(shown))
            if part.is_empty():
                continue
            ax.scatter(
                part["eventAt"].dt.replace_time_zone(None).to_list(),
                [row[t] for t in part["trader"]],
                s=20 + 280 * (part["size"].to_numpy() / biggest),
                color=colour,
                alpha=0.7,
                edgecolors="white",
                linewidths=0.5,
                label=action,
            )
        ax.set_yticks(range(len(shown)), shown)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_xlim(date2num(start), date2num(start + timedelta(days=1)))
        ax.xaxis.set_major_locator(HourLocator(byhour=range(0, 24, 3)))
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
        ax.set_xlabel("time of day (UTC); dot area ~ |change in notional| (USD)")
        ax.set_title(_title(title, len(shown), named["trader"].n_unique()))
        ax.legend(**LEGEND_OUTSIDE, markerscale=0.6)
    return fig


def volume_per_trader(fills: pl.DataFrame, day: str | date) -> Figure:
    """fills: traded notional per trader, maker (resting) and taker (crossing) apart."""
    wide = fills.group_by(trader_name(fills)).agg(
        maker=pl.col("notionalUsd").filter(pl.col("isMaker")).sum(),
        taker=pl.col("notionalUsd").filter(~pl.col("isMaker")).sum(),
    )
    return _stacked_by_trader(
        wide,
        [("maker", "maker", GREEN), ("taker", "taker", ORANGE)],
        title=f"Fill volume per trader on {day}",
        xlabel="volume, px x sz (USD)",
        money=True,
    )


def open_notional_per_trader(open_orders: pl.DataFrame, day: str | date) -> Figure:
    """open_orders_snapshot: resting notional per trader at the day's end, bids and asks apart."""
    wide = open_orders.group_by(trader_name(open_orders)).agg(
        bids=pl.col("notionalUsd").filter(pl.col("side") == "B").sum(),
        asks=pl.col("notionalUsd").filter(pl.col("side") == "A").sum(),
    )
    return _stacked_by_trader(
        wide,
        [("bids", "bids (B)", BLUE), ("asks", "asks (A)", VERMILLION)],
        title=f"Open order notional per trader at the end of {day}",
        xlabel="notional, sz x limitPx (USD)",
        money=True,
    )


def positions_per_trader(positions: pl.DataFrame, day: str | date) -> Figure:
    """positions_snapshot: position value per trader at the day's end, longs and shorts apart."""
    value = pl.col("positionValue").cast(pl.Float64).abs()
    wide = positions.group_by(trader_name(positions)).agg(
        long=value.filter(pl.col("side") == "long").sum(),
        short=value.filter(pl.col("side") == "short").sum(),
    )
    return _stacked_by_trader(
        wide,
        [("long", "long", GREEN), ("short", "short", VERMILLION)],
        title=f"Position value per trader at the end of {day}",
        xlabel="position value (USD)",
        money=True,
    )


STATS_PARTS = (
    ("ordersFilled", "filled", GREEN),
    ("ordersCanceled", "canceled", VERMILLION),
    ("ordersRejected", "rejected", PURPLE),
    ("openOrdersAtEnd", "open at end", BLUE),
    ("ordersFilledUnseen", "filled, never rested", SKY),
)


def order_outcomes_per_trader(stats: pl.DataFrame, day: str | date) -> Figure:
    """trader_daily_stats: each trader's orders by how they ended that day."""
    wide = stats.select(trader_name(stats), *(pl.col(c).cast(pl.Float64) for c, _, _ in STATS_PARTS))
    return _stacked_by_trader(
        wide, STATS_PARTS, title=f"Orders per trader by outcome on {day}", xlabel="orders", money=False
    )


def twap_notional_per_trader(twaps: pl.DataFrame, day: str | date) -> Figure:
    """twaps: notional the day's TWAPs traded per trader (executedNtl), buys and sells apart."""
    traded = pl.col("executedNtl").cast(pl.Float64)
    wide = twaps.group_by(trader_name(twaps)).agg(
        buys=traded.filter(pl.col("side") == "B").sum(),
        sells=traded.filter(pl.col("side") == "A").sum(),
    )
    return _stacked_by_trader(
        wide,
        [("buys", "buys (B)", BLUE), ("sells", "sells (A)", VERMILLION)],
        title=f"TWAP notional traded per trader by the end of {day}",
        xlabel="executed notional (USD)",
        money=True,
    )


def account_values_per_trader(days: pl.DataFrame, day: str | date) -> Figure:
    """trader_account_days: each trader's account value at the day's last sample, all dexes together."""
    wide = days.group_by(trader_name(days)).agg(close=pl.col("closeValue").sum())
    return _stacked_by_trader(
        wide, [("close", "account value", BLUE)], title=f"Account value per trader at the end of {day}",
        xlabel="account value (USD)", money=True,
    )


def pnl_per_trader(cards: pl.DataFrame, day: str | date) -> Figure:
    """trader_scorecards: the last 7 days' realized PnL and the unrealized PnL at the day's end, per trader."""
    week = cards.filter(pl.col("window") == "7d")
    wide = week.select(trader_name(week), realized=pl.col("realizedPnl").cast(pl.Float64), unrealized="unrealizedPnl")
    return _stacked_by_trader(
        wide,
        [("realized", "realized (7 days)", GREEN), ("unrealized", "unrealized at the end", SKY)],
        title=f"PnL per trader, 7 days to the end of {day}",
        xlabel="PnL (USD)",
        money=True,
    )


# Per-trader charts (the report's trader pages) ---------------------------------------------------


def _day_axis(ax: Axes, day: str | date) -> None:
    """A UTC time axis over the whole day, a tick every 3 hours."""
    start, end = day_bounds(day)
    ax.set_xlim(date2num(start), date2num(end))
    ax.xaxis.set_major_locator(HourLocator(byhour=range(0, 24, 3), tz=start.tzinfo))
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=start.tzinfo))
    ax.set_xlabel("time (UTC)")


def trader_pnl(fills: pl.DataFrame, unrealized: float | None, followed_since: datetime | None,
               day: str | date, who: str) -> Figure:
    """One trader's PnL through the day: realized (the fills' closedPnl, summed in time order) and,
    apart, the unrealized PnL of the open positions at the day's end; a line where following began
    when that was during the day."""
    title = f"{who}: PnL on {day}, realized and unrealized apart"
    if fills.is_empty() and unrealized is None:
        return no_data(title)
    start, end = day_bounds(day)
    ordered = fills.sort("time", "tid")
    times = [start, *ordered["time"].to_list(), end]
    realized = np.concatenate([[0.0], ordered["closedPnl"].cast(pl.Float64).cum_sum().to_numpy()])
    realized = np.append(realized, realized[-1])
    with _figure(2.8) as (fig, ax):
        ax.step(date2num(times), realized, where="post", color=GREEN, label="realized (fills' closedPnl)")
        if unrealized is not None:
            ax.plot([date2num(end)], [unrealized], "s", color=SKY, markersize=7, clip_on=False,
                    label=f"unrealized at the day's end ({usd(unrealized)})")
        if followed_since is not None and start <= followed_since < end:
            ax.axvline(date2num(followed_since), color=GREY, linestyle="--", linewidth=1, label="following began")
        ax.axhline(0, color=GREY, linewidth=0.6)
        _day_axis(ax, day)
        ax.yaxis.set_major_formatter(FuncFormatter(usd))
        ax.set_ylabel("PnL (USD)")
        ax.set_title(title)
        ax.legend(**LEGEND_OUTSIDE)
    return fig


def trader_position(fills: pl.DataFrame, day: str | date, who: str) -> Figure:
    """One trader's position in its most traded perp that day, after each fill (startPosition plus
    the fill), with the fill prices on a second axis."""
    perps = fills.filter(pl.col("dir").is_in(["Buy", "Sell"]).not_())
    title = f"{who}: position on {day}"
    if perps.is_empty():
        return no_data(title)
    coin = perps.group_by("coin").agg(pl.col("notionalUsd").sum()).sort("notionalUsd", "coin",
                                                                          descending=[True, False])["coin"][0]
    ordered = perps.filter(pl.col("coin") == coin).sort("time", "tid")
    signed = pl.when(pl.col("side") == "B").then(pl.col("sz")).otherwise(-pl.col("sz")).cast(pl.Float64)
    after = ordered.select("time", size=pl.col("startPosition").cast(pl.Float64) + signed,
                           px=pl.col("px").cast(pl.Float64))
    start, end = day_bounds(day)
    first = float(ordered["startPosition"].cast(pl.Float64)[0])
    times = date2num([start, *after["time"].to_list(), end])
    sizes = np.concatenate([[first], after["size"].to_numpy(), [after["size"][-1]]])
    with _figure(2.8) as (fig, ax):
        ax.step(times, sizes, where="post", color=BLUE, label=f"{coin} position (size)")
        ax.axhline(0, color=GREY, linewidth=0.6)
        ax.set_ylabel(f"size ({coin}; > 0 long)")
        price = ax.twinx()
        price.plot(date2num(after["time"].to_list()), after["px"].to_numpy(), ".", color=ORANGE, markersize=4,
                   label="fill price")
        price.set_ylabel("fill price (USD)")
        price.grid(False)
        price.spines["right"].set_visible(True)
        _day_axis(ax, day)
        ax.set_title(title + f": {coin}, {after.height} fill(s)")
        handles = [*ax.get_legend_handles_labels()[0], *price.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, **{**LEGEND_OUTSIDE, "bbox_to_anchor": (1.08, 1.0)})
    return fig


def liquidation_distance(positions: pl.DataFrame, day: str | date, who: str) -> Figure:
    """One trader's open positions at the day's end (positions_snapshot): how far the mark each
    was last valued at is from its liquidation price, in % of the mark."""
    title = f"{who}: distance to liquidation at the end of {day}"
    rows = (
        positions.filter(pl.col("szi").cast(pl.Float64) != 0)
        .with_columns(distance=pl.col("liquidationDistancePct"))
        .sort("coin")
    )
    if rows.is_empty():
        return no_data(title)
    with _figure(1.2 + ROW_IN * rows.height) as (fig, ax):
        y = np.arange(rows.height)
        distance = rows["distance"].fill_null(0.0).to_numpy()
        colours = [VERMILLION if d is not None and d <= 10 else BLUE for d in rows["distance"].to_list()]
        ax.barh(y, distance, color=colours)
        labels = [f"{c} {s}" + ("" if d is not None else " (no liquidation price)")
                  for c, s, d in rows.select("coin", "side", "distance").iter_rows()]
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.axvline(10, color=GREY, linestyle="--", linewidth=1, label="10 % (near_liquidation default)")
        ax.set_xlabel("distance from the mark to the liquidation price (% of the mark)")
        ax.set_title(title)
        ax.legend(**LEGEND_OUTSIDE)
    return fig


def cohort_roi(cohorts: pl.DataFrame, day: str | date) -> Figure:
    """Per leaderboard size cohort (rows of :func:`orderwatch_dagster.report.cohort_table`): the median
    30-day return of every account and of the followed ones, side by side."""
    title = f"Median 30-day return per size cohort, leaderboard up to the end of {day}"
    if cohorts.is_empty():
        return no_data(title)
    with _figure(1.2 + 2 * ROW_IN * cohorts.height) as (fig, ax):
        y = np.arange(cohorts.height)
        for offset, column, legend, colour in ((-0.2, "medianRoiAll", "all accounts", GREY),
                                               (0.2, "medianRoiFollowed", "followed", BLUE)):
            values = cohorts[column].fill_null(0.0).to_numpy().astype(float) * 100
            ax.barh(y + offset, values, height=0.4, color=colour, label=legend)
        ax.set_yticks(y, cohorts["sizeCohort"].fill_null("–").to_list())
        ax.invert_yaxis()
        ax.axvline(0, color=GREY, linewidth=0.6)
        ax.set_xlabel("median month ROI (%)")
        ax.grid(axis="y", visible=False)
        ax.set_title(title)
        ax.legend(**LEGEND_OUTSIDE)
    return fig


TABLE_CHARTS: dict[str, Callable[[pl.DataFrame, str], Figure]] = {
    "order_events": events_per_hour,
    "fills": volume_per_trader,
    "order_lifecycles": lifetimes,
    "large_change_alerts": large_changes,
    "open_orders_snapshot": open_notional_per_trader,
    "positions_snapshot": positions_per_trader,
    "trader_daily_stats": order_outcomes_per_trader,
    "twaps": twap_notional_per_trader,
    "trader_account_days": account_values_per_trader,
    "trader_scorecards": pnl_per_trader,
}
"""The chart each daily table's materialization carries in its metadata."""


def table_chart(table: str, df: pl.DataFrame, day: str) -> bytes:
    """The PNG of ``table``'s chart for ``day`` (see :data:`TABLE_CHARTS`)."""
    return png(TABLE_CHARTS[table](df, day))
