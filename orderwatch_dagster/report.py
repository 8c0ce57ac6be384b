"""The daily HTML report: one self-contained page per UTC day for people who do not query Parquet.

Pure: the day's tables in, an HTML string out (inline CSS, charts as ``data:`` PNGs, no external
requests), so it opens from a file, a static web server or a mail attachment alike. The
``daily_report`` asset reads the partitions and writes the page beside the Parquet folders.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

import polars as pl
from matplotlib.figure import Figure

from collector_service import schema
from orderwatch_dagster import charts, tables

TABLES = ("order_events", "fills", "order_lifecycles", "large_change_alerts", "trader_daily_stats",
          "positions_snapshot", "trader_scorecards")
"""The partitions the report reads."""
REPORT_DPI = 110
TOP_CHANGES = 15
"""Largest changes listed under the timeline."""
TRADER_PAGES = 8
"""Traders given a page of their own: the largest by the day's fill volume, then by position value."""
AMEND_CHAINS = 5
"""Latest amend chains listed on a trader's page."""
SECTIONS = {
    "activity": "Activity per trader",
    "lifetimes": "Order lifetimes",
    "fill-rates": "Fill rates",
    "large-changes": "Large changes",
    "traders": "Traders",
    "cohorts": "Cohorts",
    "data-quality": "Data quality",
}

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2433; margin: 0;
       background: #f5f6f8; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid #e3e6eb; }
h3 { font-size: 15px; margin: 24px 0 4px; }
.sub { color: #5b6576; margin: 0 0 16px; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0 8px; padding: 0; list-style: none; }
.kpis li { background: #f0f3f7; border-radius: 6px; padding: 8px 12px; min-width: 110px; }
.kpis b { display: block; font-size: 18px; }
nav a { margin-right: 12px; color: #0072b2; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6eb; text-align: right; }
th { background: #f0f3f7; } td.l, th.l { text-align: left; }
ul.notes li { margin: 4px 0; } .warn { color: #b34700; } .ok { color: #2f7d32; }
"""


def missing_days(written: Sequence[str], day: str) -> list[str]:
    """Days between the first written partition and ``day`` (excluded) that have none: a gap in the data."""
    earlier = sorted(d for d in written if d < day)
    if not earlier:
        return []
    have = set(earlier)
    first, last = date.fromisoformat(earlier[0]), date.fromisoformat(day)
    days = (first + timedelta(days=i) for i in range((last - first).days))
    return [d.isoformat() for d in days if d.isoformat() not in have]


def empty(table: str) -> pl.DataFrame:
    """A table with no rows, in its schema (a partition that was not written)."""
    return pl.DataFrame(schema=tables.schema(tables.TABLES[table]))


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{charts.data_uri(png)}" alt="{_e(alt)}">'


def _chart(fig: Figure, alt: str) -> str:
    return _img(charts.png(fig, REPORT_DPI), alt)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are text (left-aligned)."""
    if not rows:
        return '<p class="sub">No rows.</p>'

    def cls(i: int) -> str:
        return ' class="l"' if i < left else ""

    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_e(v)}</td>" for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _names(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """ethAddress -> label from the tables that carry the watch list's labels."""
    labelled = [frames[t].select("ethAddress", "label") for t in ("trader_daily_stats", "order_lifecycles")]
    return pl.concat(labelled).drop_nulls("label").unique("ethAddress", keep="first")


def _activity(day: str, events: pl.DataFrame, names: pl.DataFrame) -> str:
    labelled = events.select("ethAddress", "eventAt", "action").join(names, on="ethAddress", how="left")
    return _chart(charts.trader_activity(labelled, day), "events per trader per hour") + _chart(
        charts.events_per_hour(events, day), "events per hour by action"
    )


def _fill_rates(day: str, stats: pl.DataFrame, fills: pl.DataFrame, names: pl.DataFrame) -> str:
    rows = []
    for r in stats.with_columns(charts.trader_name(stats)).sort("volumeUsd", descending=True).iter_rows(named=True):
        closed = r["ordersFilled"] + r["ordersCanceled"] + r["ordersRejected"]
        rows.append(
            (
                r["trader"],
                r["ordersPlaced"],
                r["ordersFilled"],
                r["ordersCanceled"],
                r["openOrdersAtEnd"],
                r["ordersFilledUnseen"],
                _pct(r["ordersFilled"] / closed if closed else None),
                _pct(r["makerRatio"]),
                charts.usd(r["volumeUsd"] or 0.0),
            )
        )
    header = ("trader", "placed", "filled", "canceled", "open at end", "never rested", "fill rate", "maker", "volume")
    return (
        _chart(charts.order_outcomes_per_trader(stats, day), "orders per trader by outcome")
        + '<p class="sub">Fill rate: filled / (filled + canceled + rejected) of the orders that closed that day; '
        "maker: the share of the fill volume that rested on the book (did not cross).</p>"
        + _table(header, rows)
        + _chart(
            charts.volume_per_trader(fills.join(names, on="ethAddress", how="left"), day), "fill volume per trader"
        )
    )


def _large_changes(day: str, alerts: pl.DataFrame) -> str:
    biggest = (
        alerts.with_columns(charts.trader_name(alerts))
        .sort(pl.col("changeUsd").abs(), "eventAt", descending=[True, False], nulls_last=True)
        .head(TOP_CHANGES)
    )
    rows = [
        (
            r["eventAt"].strftime("%H:%M:%S"),
            r["trader"],
            r["coin"],
            r["action"],
            r["reason"],
            charts.usd(r["changeUsd"]),
        )
        for r in biggest.iter_rows(named=True)
    ]
    chart = _chart(charts.large_changes(alerts, day), "large changes on a timeline")
    if alerts.is_empty():
        return chart + '<p class="sub">0 alert(s): no large change that day.</p>'
    caption = f'<p class="sub">{alerts.height} alert(s); the {biggest.height} largest by |change|:</p>'
    header = ("time (UTC)", "trader", "coin", "action", "reason", "change")
    return chart + caption + _table(header, rows, 5)


def trader_page_addresses(fills: pl.DataFrame, positions: pl.DataFrame) -> list[str]:
    """The traders given a page: the :data:`TRADER_PAGES` largest by fill volume, then by position value."""
    volume = fills.group_by("ethAddress").agg(v=pl.col("notionalUsd").sum())
    held = positions.group_by("ethAddress").agg(p=pl.col("positionValue").cast(pl.Float64).abs().sum())
    ranked = volume.join(held, on="ethAddress", how="full", coalesce=True).fill_null(0.0)
    ranked = ranked.sort("v", "p", "ethAddress", descending=[True, True, False])
    return ranked["ethAddress"].head(TRADER_PAGES).to_list()


def _size(value: object) -> str:
    return "–" if value is None else f"{float(str(value)):g}"


def _amend_chains(chains: pl.DataFrame) -> str:
    amended = chains.filter(pl.col("amendCount") > 0).sort("placedAt", "rootOid", descending=True).head(AMEND_CHAINS)
    rows = [
        (r["placedAt"].strftime("%H:%M:%S") if r["placedAt"] else "–", r["coin"], r["side"], r["rootOid"], r["oid"],
         r["amendCount"], r["nPriceChanges"], f"{_size(r['origSz'])} → {_size(r['lastSz'])}", r["outcome"])
        for r in amended.iter_rows(named=True)
    ]
    header = ("placed (UTC)", "coin", "side", "first oid", "last oid", "amends", "price changes", "size", "outcome")
    caption = (f'<p class="sub">The latest {len(rows)} of {chains.filter(pl.col("amendCount") > 0).height} '
               "amended order(s) (amend chains) of the day:</p>")
    return caption + _table(header, rows, 3) if rows else '<p class="sub">No amended order that day.</p>'


def _trader_pages(day: str, frames: Mapping[str, pl.DataFrame], names: pl.DataFrame) -> str:
    fills, positions, cards = frames["fills"], frames["positions_snapshot"], frames["trader_scorecards"]
    chains = frames["order_lifecycles"]
    addresses = trader_page_addresses(fills, positions)
    if not addresses:
        return '<p class="sub">No trader traded or held a position that day.</p>'
    label = dict(names.iter_rows())
    pages = []
    for address in addresses:
        who = label.get(address) or f"{address[:6]}…{address[-4:]}"
        mine = fills.filter(pl.col("ethAddress") == address)
        held = positions.filter(pl.col("ethAddress") == address)
        day_card = cards.filter((pl.col("ethAddress") == address) & (pl.col("window") == "1d"))
        followed = cards.filter((pl.col("ethAddress") == address) & (pl.col("window") == "followed"))
        # the scorecard's figure is valued at the day's end (the positions' own is as of their last change)
        if day_card.height:
            unrealized = day_card["unrealizedPnl"][0]
        else:
            unrealized = float(held["unrealizedPnl"].cast(pl.Float64).sum()) if held.height else None
        since = followed["followedSince"][0] if followed.height else None
        pages.append(
            f'<section id="trader-{_e(address)}"><h3>{_e(who)}</h3><p class="sub">{_e(address)}</p>'
            + _chart(charts.trader_pnl(mine, unrealized, since, day, who), f"{who}: PnL")
            + _chart(charts.trader_position(mine, day, who), f"{who}: position and price")
            + _chart(charts.liquidation_distance(held, day, who), f"{who}: distance to liquidation")
            + _amend_chains(chains.filter(pl.col("ethAddress") == address))
            + "</section>"
        )
    links = " ".join(f'<a href="#trader-{_e(a)}">{_e(label.get(a) or a[:10])}</a>' for a in addresses)
    caption = (f'<p class="sub">The {len(addresses)} largest traders by the day\'s fill volume (then position '
               "value): PnL through the day, the position in their most traded perp with the fill prices, the "
               "distance to liquidation at the day's end and their latest amended orders.</p>")
    return caption + f"<nav>{links}</nav>" + "".join(pages)


def cohort_table(board: pl.DataFrame, cards: pl.DataFrame) -> pl.DataFrame:
    """Per size cohort of a leaderboard snapshot: accounts, median month ROI, and the same for the
    traders followed that day (those with a scorecard) with their 30-day realized PnL by our fills."""
    followed = cards.filter(pl.col("window") == "30d").select("ethAddress", ourPnl=pl.col("realizedPnl").cast(
        pl.Float64))
    rows = board.select("ethAddress", "sizeCohort", roi=pl.col("monthRoi").cast(pl.Float64),
                        pnl=pl.col("monthPnl").cast(pl.Float64)).join(followed, on="ethAddress", how="left")
    is_followed = pl.col("ourPnl").is_not_null()
    return rows.group_by("sizeCohort").agg(
        accounts=pl.len(),
        medianRoiAll=pl.col("roi").median(),
        followed=is_followed.sum(),
        medianRoiFollowed=pl.col("roi").filter(is_followed).median(),
        boardPnlFollowed=pl.col("pnl").filter(is_followed).sum(),
        ourPnlFollowed=pl.col("ourPnl").sum(),
    ).sort("sizeCohort", nulls_last=True)


def _cohorts(day: str, board: pl.DataFrame | None, cards: pl.DataFrame) -> str:
    if board is None:
        return '<p class="sub">No leaderboard snapshot within a day before the day\'s end: no cohort figures.</p>'
    table = cohort_table(board, cards)
    rows = [
        (r["sizeCohort"] or "–", r["accounts"], _pct(r["medianRoiAll"]), r["followed"], _pct(r["medianRoiFollowed"]),
         charts.usd(r["boardPnlFollowed"] or 0.0), charts.usd(r["ourPnlFollowed"] or 0.0))
        for r in table.iter_rows(named=True)
    ]
    header = ("size cohort", "accounts", "median month ROI", "followed", "their median ROI",
              "their month PnL (leaderboard)", "their 30-day realized PnL (our fills)")
    at = board.select(pl.col("snapshotAt").max()).item()
    caption = (f'<p class="sub">The leaderboard snapshot of {at:%Y-%m-%d %H:%M} UTC ({board.height} accounts) by '
               "size cohort (account value), and within each the traders followed that day (a scorecard); "
               "their realized PnL by our fills covers only the time we followed them.</p>")
    return _chart(charts.cohort_roi(table, day), "median month ROI per size cohort") + caption + _table(header, rows)


def quality_notes(
    frames: Mapping[str, pl.DataFrame], missing_tables: Sequence[str], gaps: Sequence[str]
) -> list[tuple[bool, str]]:
    """The data-quality notes, each ``(needs_attention, text)``."""
    events, fills, lifecycles = frames["order_events"], frames["fills"], frames["order_lifecycles"]
    rest_events = events.filter(pl.col("source") == schema.SOURCE_REST)
    rest_fills = fills.filter(pl.col("source") == schema.SOURCE_REST)
    unknown_closes = events.filter(
        (pl.col("action") == schema.ACTION_CLOSED) & (pl.col("finalStatus") == schema.FINAL_STATUS_UNKNOWN)
    )
    unknown = lifecycles.filter(pl.col("outcome") == "unknown").height
    only_fills = lifecycles.filter(~pl.col("seenInEvents")).height
    notes = [
        (
            rest_events.height > 0,
            f"{rest_events.height} order event(s) of {rest_events['ethAddress'].n_unique()} trader(s) were recovered "
            "over REST after a feed gap (source rest); their times are when the recovery saw them.",
        ),
        (rest_fills.height > 0, f"{rest_fills.height} fill(s) were recovered over REST (source rest)."),
        (
            unknown > 0,
            f"{unknown} order(s) closed with an outcome still unknown, and {unknown_closes.height} close event(s) "
            'carry finalStatus "unknown" (also the closes of replaced orders); a later run picks up an outcome the '
            "collector resolves.",
        ),
        (
            False,
            f"{only_fills} order(s) are known only from their fills (they traded without resting in a snapshot, "
            "e.g. IOC or market orders).",
        ),
    ]
    if missing_tables:
        notes.append((True, "No partition for this day in: " + ", ".join(missing_tables) + "."))
    if gaps:
        shown = ", ".join(gaps[:10]) + (f" and {len(gaps) - 10} more" if len(gaps) > 10 else "")
        notes.append((True, f"{len(gaps)} earlier day(s) have no order_events partition: {shown}."))
    else:
        notes.append((False, "No earlier day is missing its order_events partition."))
    return notes


def build(
    day: str,
    frames: Mapping[str, pl.DataFrame],
    *,
    missing_tables: Sequence[str] = (),
    gaps: Sequence[str] = (),
    built_at: datetime | None = None,
    leaderboard: pl.DataFrame | None = None,
) -> str:
    """The report page for ``day`` from the day's partitions of :data:`TABLES` (empty frames for missing ones)
    and the last ``leaderboard`` snapshot up to the day's end (None: none)."""
    events, fills, lifecycles = frames["order_events"], frames["fills"], frames["order_lifecycles"]
    alerts, stats = frames["large_change_alerts"], frames["trader_daily_stats"]
    names = _names(frames)
    kpis = {
        "traders": events["ethAddress"].n_unique(),
        "order events": events.height,
        "orders (chains)": lifecycles.height,
        "fills": fills.height,
        "volume": charts.usd(float(fills["notionalUsd"].sum())),
        "large changes": alerts.height,
    }
    notes = "".join(
        f'<li class="{"warn" if attention else "ok"}">{_e(text)}</li>'
        for attention, text in quality_notes(frames, missing_tables, gaps)
    )
    body = {
        "activity": _activity(day, events, names),
        "lifetimes": _chart(charts.lifetimes(lifecycles, day), "order lifetime distribution")
        + '<p class="sub">Orders (amend chains) that closed that day, from placement to the close the collector '
        "saw; orders still open at the day's end are left out.</p>",
        "fill-rates": _fill_rates(day, stats, fills, names),
        "large-changes": _large_changes(day, alerts),
        "traders": _trader_pages(day, frames, names),
        "cohorts": _cohorts(day, leaderboard, frames["trader_scorecards"]),
        "data-quality": f'<ul class="notes">{notes}</ul>',
    }
    built = f" · built {built_at:%Y-%m-%d %H:%M:%S} UTC" if built_at else ""
    sections = "".join(f'<section id="{k}"><h2>{_e(SECTIONS[k])}</h2>{v}</section>' for k, v in body.items())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>orderwatch daily report {day}</title><style>{CSS}</style></head><body><main>"
        f"<h1>orderwatch daily report: {day}</h1>"
        f'<p class="sub">UTC day {day}, from the daily Parquet tables{built}</p>'
        '<ul class="kpis">' + "".join(f"<li><b>{_e(v)}</b>{_e(k)}</li>" for k, v in kpis.items()) + "</ul>"
        "<nav>" + "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t in SECTIONS.items()) + "</nav>"
        f"{sections}</main></body></html>\n"
    )
