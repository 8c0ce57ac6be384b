"""The public leaderboard: fetch the document, parse it into one typed row per account, add cohorts.

The document (~25 MB, ~30k rows; ../shared/hyperliquid/LEADERBOARD.md) is parsed without a Python
object per row: msgspec re-encodes it compactly (which also rejects garbled or truncated JSON),
five byte replacements turn each row's ``windowPerformances`` list of ``[name, {...}]`` pairs into
an object keyed by window name (the patterns hold quotes, so none can match inside a JSON string,
where every quote is escaped), and polars reads the result against a fixed schema. Numbers stay
the document's decimal strings until they are cast, exactly, to ``Decimal(38, 10)``.
"""

from __future__ import annotations

import http.client
import io
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime

import msgspec
import polars as pl

from orderwatch_dagster import settings, tables

DEFAULT_URL = settings.default("HYPERLIQUID_LEADERBOARD_URL")
WINDOWS = ("day", "week", "month", "allTime")
FIELDS = ("pnl", "roi", "vlm")
SCALE = 10
"""Decimals kept: the document gives up to 10 (``roi``, ``accountValue``)."""
NUMBER = r"^-?[0-9]+(\.[0-9]{1,10})?$"
ADDRESS = r"^(0x)?[0-9a-fA-F]{40}$"
MAX_LISTED = 5
"""How many bad rows an error names."""

_WINDOW = pl.Struct({f: pl.String() for f in FIELDS})
_SCHEMA = {
    "leaderboardRows": pl.List(
        pl.Struct(
            {
                "ethAddress": pl.String(),
                "accountValue": pl.String(),
                "windowPerformances": pl.Struct({w: _WINDOW for w in WINDOWS}),
                "prize": pl.Float64(),
                "displayName": pl.String(),
            }
        )
    )
}
_REWRITES = (
    (b'"windowPerformances":[[', b'"windowPerformances":{'),
    (b'",{"', b'":{"'),
    (b'"}],["', b'"},"'),
    (b'"}]],"', b'"}},"'),
    (b'"}]]}', b'"}}}'),
)


class LeaderboardError(ValueError):
    """The document could not be fetched or is not a valid leaderboard; the message says why."""


def fetch(url: str, timeout_s: float) -> bytes:
    """The document's bytes; HTTP errors, time-outs and short reads raise :class:`LeaderboardError`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        raise LeaderboardError(f"GET {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LeaderboardError(f"GET {url}: {reason or type(exc).__name__}") from None


def column(window: str, field: str) -> str:
    """The table's column for one window's field: ``dayPnl``, ``allTimeRoi``, ..."""
    return f"{window}{field.capitalize()}"


def _rows(doc: bytes) -> pl.DataFrame:
    try:
        compact = msgspec.json.format(doc, indent=-1)
    except msgspec.DecodeError as exc:
        raise LeaderboardError(f"not valid JSON ({len(doc):,} bytes; truncated or garbled?): {exc}") from None
    for old, new in _REWRITES:
        compact = compact.replace(old, new)
    try:
        raw = pl.read_json(io.BytesIO(compact), schema=_SCHEMA)
    except Exception as exc:  # polars raises its own error types for a shape it cannot read
        raise LeaderboardError(f"not the leaderboard's shape ({{'leaderboardRows': [row, ...]}}): {exc}") from None
    if raw.height != 1 or raw["leaderboardRows"].null_count():
        raise LeaderboardError("not the leaderboard's shape: no leaderboardRows list")
    return raw.explode("leaderboardRows").unnest("leaderboardRows").with_row_index("row")


def _problems(rows: pl.DataFrame) -> pl.DataFrame:
    """One line per bad row: its index, address and every problem it has."""
    wp = pl.col("windowPerformances")
    checks: list[pl.Expr] = [
        pl.when(~pl.col("ethAddress").fill_null("").str.contains(ADDRESS)).then(
            pl.format("malformed ethAddress {}", pl.col("ethAddress").fill_null("null"))
        ),
        pl.when(~pl.col("accountValue").fill_null("").str.contains(NUMBER)).then(
            pl.format(
                "accountValue {} is not a decimal with at most 10 decimals", pl.col("accountValue").fill_null("null")
            )
        ),
    ]
    for w in WINDOWS:
        checks.append(pl.when(wp.struct.field(w).is_null()).then(pl.lit(f"missing window {w}")))
        for f in FIELDS:
            value = wp.struct.field(w).struct.field(f)
            checks.append(
                pl.when(wp.struct.field(w).is_not_null() & ~value.fill_null("").str.contains(NUMBER)).then(
                    pl.format(f"{w}.{f} {{}} is not a decimal with at most 10 decimals", value.fill_null("null"))
                )
            )
    return (
        rows.lazy()
        .select("row", "ethAddress", problem=pl.concat_str(checks, separator="; ", ignore_nulls=True))
        .filter(pl.col("problem").str.len_bytes() > 0)
        .collect()
    )


def parse(doc: bytes, at: datetime, size_cohorts: Cohorts, pnl_cohorts: Cohorts) -> pl.DataFrame:
    """The snapshot taken at ``at``: one row per account in the ``leaderboard`` table's schema.

    Any bad row (a missing window, a malformed address, a number that is not a decimal string
    with at most 10 decimals) rejects the whole snapshot: :class:`LeaderboardError` names the
    first rows and their problems."""
    rows = _rows(doc)
    if rows.is_empty():
        raise LeaderboardError("the document has no rows")
    bad = _problems(rows)
    if not bad.is_empty():
        listed = "; ".join(
            f"row {r['row']} ({r['ethAddress']}): {r['problem']}" for r in bad.head(MAX_LISTED).iter_rows(named=True)
        )
        more = f" and {bad.height - MAX_LISTED} more rows" if bad.height > MAX_LISTED else ""
        raise LeaderboardError(f"{bad.height} bad rows, snapshot rejected: {listed}{more}")
    wp = pl.col("windowPerformances")
    value = pl.col("accountValue").str.to_decimal(scale=SCALE)
    windows = [
        wp.struct.field(w).struct.field(f).str.to_decimal(scale=SCALE).alias(column(w, f))
        for w in WINDOWS
        for f in FIELDS
    ]
    address = pl.col("ethAddress").str.to_lowercase()
    typed = rows.lazy().select(
        pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("snapshotAt"),
        pl.when(address.str.starts_with("0x")).then(address).otherwise("0x" + address).alias("ethAddress"),
        "displayName",
        value.alias("accountValue"),
        "prize",
        *windows,
    )
    ranks = [
        pl.col(column(w, "pnl")).rank("ordinal", descending=True).cast(pl.UInt32).alias(f"{w}Rank") for w in WINDOWS
    ]
    cohorts = typed.with_columns(
        *ranks,
        sizeCohort=size_cohorts.of(pl.col("accountValue")),
        pnlCohort=pnl_cohorts.of(pl.col("allTimePnl")),
    )
    return tables.conform(cohorts, tables.LEADERBOARD).collect()


class Cohorts:
    """Named bands of a USD value: ``bounds`` ascending lower bounds (inclusive); the first band also
    takes everything below its bound."""

    def __init__(self, names: Sequence[str], bounds: Sequence[float]) -> None:
        self.names, self.bounds = list(names), list(bounds)

    def of(self, value: pl.Expr) -> pl.Expr:
        """The band's name of each value: the count of bounds above the first that it reaches."""
        v = value.cast(pl.Float64)
        band = pl.sum_horizontal([(v >= b).cast(pl.UInt8) for b in self.bounds[1:]] or [v.is_null() & False])
        return band.replace_strict(list(range(len(self.names))), self.names, return_dtype=pl.String)
