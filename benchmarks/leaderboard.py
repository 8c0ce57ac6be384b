"""Benchmark: one leaderboard snapshot (30k rows) fetched over loopback, parsed, typed, given
cohorts and written to Parquet (the ``leaderboard`` asset's step), then the selection on it,
beside a naive ``json.loads`` build of the same table in the same run.

Each figure is the median of ``RUNS`` fresh processes (seconds from the first byte requested to
the Parquet file written; peak RSS growth from ``VmHWM``). The document comes from the
simulator's generator (exchange_sim.leaderboard), 500 of its rows simulated traders.
"""

from __future__ import annotations

import argparse
import http.server
import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import psutil

from benchmarks.measure import peak_rss, run_child
from benchmarks.report import Section
from exchange_sim.leaderboard import Leaderboard
from exchange_sim.traders import trader_addresses
from orderwatch_dagster import tables
from orderwatch_dagster.leaderboard import WINDOWS, column, parse
from orderwatch_dagster.selection import SelectionRules, select

RUNS = 3
TARGET_S = 0.5


def serve(body: bytes) -> str:
    """Serve ``body`` on a loopback port from a thread; returns its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/Mainnet/leaderboard"


def naive(body: bytes, at: datetime, rules: SelectionRules) -> pl.DataFrame:
    """The obvious build: json.loads, a dict per row with Decimals, a frame from the dicts."""
    size, pnl = rules.cohorts.size, rules.cohorts.pnl

    def band(bands: dict[str, float], value: Decimal) -> str:
        return (
            [name for name, low in bands.items() if value >= low][-1]
            if value >= next(iter(bands.values()))
            else next(iter(bands))
        )

    rows = []
    for r in json.loads(body)["leaderboardRows"]:
        out: dict[str, object] = {
            "snapshotAt": at,
            "ethAddress": r["ethAddress"].lower(),
            "displayName": r["displayName"],
            "accountValue": Decimal(r["accountValue"]),
            "prize": float(r["prize"]),
        }
        perf = dict(r["windowPerformances"])
        for w in WINDOWS:
            for f in ("pnl", "roi", "vlm"):
                out[column(w, f)] = Decimal(perf[w][f])
        out["sizeCohort"] = band(size, out["accountValue"])  # type: ignore[arg-type]
        out["pnlCohort"] = band(pnl, out["allTimePnl"])  # type: ignore[arg-type]
        rows.append(out)
    df = pl.DataFrame(rows, infer_schema_length=None)
    ranks = [pl.col(column(w, "pnl")).rank("ordinal", descending=True).alias(f"{w}Rank") for w in WINDOWS]
    return tables.conform(df.with_columns(ranks), tables.LEADERBOARD).collect()


def timed(doc: Path, impl: str) -> dict[str, float]:
    """In this (fresh) process: fetch + parse + write, then the selection on the result."""
    from orderwatch_dagster.leaderboard import fetch

    rules = SelectionRules()
    url = serve(doc.read_bytes())
    base = psutil.Process().memory_info().rss
    at = datetime.now(UTC)
    started = time.perf_counter()
    body = fetch(url, 30)
    fetched = time.perf_counter()
    if impl == "fast":
        df = parse(body, at, rules.cohorts.size_cohorts(), rules.cohorts.pnl_cohorts())
    else:
        df = naive(body, at, rules)
    df.write_parquet(doc.with_suffix(f".{impl}.parquet"), compression="zstd", statistics=True)
    seconds = time.perf_counter() - started
    empty = pl.DataFrame(schema=tables.schema(tables.TRADER_SELECTION))
    sel_started = time.perf_counter()
    listed = select(df, empty, rules, at).height
    return {
        "seconds": seconds,
        "fetch_seconds": fetched - started,
        "select_seconds": time.perf_counter() - sel_started,
        "rows": df.height,
        "listed": listed,
        "peak_rss_mib": (peak_rss() - base) / 2**20,
    }


def run(quick: bool = False) -> Section:
    section = Section("leaderboard", "Leaderboard snapshot: fetch, parse, type, cohorts, write; then the selection")
    n = 3_000 if quick else 30_000
    runs = 1 if quick else RUNS
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "leaderboard.json"
        body = Leaderboard(1, n - 500, trader_addresses(1, 500)).document()
        doc.write_bytes(body)
        got: dict[str, list[dict[str, float]]] = {"fast": [], "naive": []}
        for _ in range(runs):  # interleaved: both see the same machine noise
            for impl in got:
                got[impl].append(run_child("benchmarks.leaderboard", str(doc), impl))
        med = {impl: {k: statistics.median(g[k] for g in runs_) for k in runs_[0]} for impl, runs_ in got.items()}
        fast_df, naive_df = (pl.read_parquet(doc.with_suffix(f".{i}.parquet")) for i in ("fast", "naive"))
        section.checks["naive_agrees"] = fast_df.drop("snapshotAt").equals(naive_df.drop("snapshotAt"))
    f, s = med["fast"], med["naive"]
    section.add("document: rows / size", f"{n:,} / {len(body) / 2**20:.1f} MiB")
    section.add(
        "asset step (fetch + parse + type + cohorts + write): fast",
        f"{f['seconds']:.3f} s",
        f"<= {TARGET_S} s",
        f["seconds"] <= TARGET_S,
    )
    section.add("same, naive json.loads build", f"{s['seconds']:.3f} s")
    section.add("of which fetch over loopback: fast / naive", f"{f['fetch_seconds']:.3f} / {s['fetch_seconds']:.3f} s")
    section.ratio("naive / fast", s["seconds"] / f["seconds"])
    section.add("selection on the snapshot (500 of 30k)", f"{f['select_seconds']:.3f} s")
    section.add(
        "peak RSS growth: fast / naive (incl. selection)",
        f"{f['peak_rss_mib']:.0f} / {s['peak_rss_mib']:.0f} MiB",
        "< 300 MiB",
        f["peak_rss_mib"] < 300,
    )
    section.checks["selection_lists_500"] = f["listed"] >= 500
    section.notes.append(f"median of {runs} fresh processes per figure, fast and naive interleaved")
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="time one leaderboard build (child of the leaderboard benchmark)")
    parser.add_argument("doc", type=Path)
    parser.add_argument("impl", choices=["fast", "naive"])
    args = parser.parse_args()
    print(json.dumps(timed(args.doc, args.impl)))
