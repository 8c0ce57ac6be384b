"""The README's "Reading the data" snippets run against Parquet the pipeline wrote, and its
"Parquet tables" section lists every column."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
from pymongo.database import Database

from orderwatch_dagster import tables
from orderwatch_dagster.assets import daily_assets
from orderwatch_dagster.checks import daily_checks
from tests.dagster import scenario as sc

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_reading_the_data_snippets_run(seeded_db: Database, resources: dict, data_dir: Path, tmp_path: Path) -> None:
    for day in (sc.D1, sc.D2):
        assert dg.materialize([*daily_assets, *daily_checks], partition_key=day, resources=resources).success
    blocks = re.findall(r"```python\n(.*?)```", section("Reading the data"), flags=re.S)
    assert len(blocks) == 3
    assert any("polars" in b for b in blocks) and any("duckdb" in b for b in blocks)
    for i, code in enumerate(blocks):
        script = tmp_path / f"snippet{i}.py"
        script.write_text(code)
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"ORDERWATCH_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 0, proc.stderr
        assert sc.D2 in proc.stdout
    polars_out = subprocess.run(
        [sys.executable, str(tmp_path / "snippet0.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"ORDERWATCH_DATA_DIR": str(data_dir), "POLARS_FMT_STR_LEN": "200", "POLARS_TABLE_WIDTH": "400"},
    ).stdout
    assert "canceled" in polars_out and "crossed_threshold,large_change" in polars_out, polars_out
    quality = subprocess.run(
        [sys.executable, str(tmp_path / "snippet2.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"ORDERWATCH_DATA_DIR": str(data_dir), "POLARS_FMT_MAX_ROWS": "-1", "POLARS_TABLE_WIDTH": "400"},
    ).stdout
    # Trader C's closed orders on D2 by coin: the ETH chain 320 -> 322 filled 40 at 3017.5 as maker,
    # 75 bps better than the 2995 mid when 320 was placed; BTC: 0.5 filled of 2 placed.
    lines = {line.split("┆")[1].strip(): line for line in quality.splitlines() if sc.D2 in line}
    assert set(lines) == {"@107", "BTC", "ETH", "xyz:TSLA"}, quality
    assert "-75.125209" in lines["ETH"] and "120700.0" in lines["ETH"], quality
    assert "0.25" in lines["BTC"], quality


def test_parquet_tables_section_lists_every_column() -> None:
    # The README is moving into docs/: a table documented on a docs page counts there.
    texts = [section("Parquet tables"), *(p.read_text() for p in sorted((README.parent / "docs").glob("*.md")))]
    for table, cols in tables.TABLES.items():
        text = next((t for t in texts if f"**`{table}`**" in t), "")
        assert f"**`{table}`**" in text
        block = text.split(f"**`{table}`**", 1)[1].split("**`", 1)[0]
        listed = re.findall(r"^\| `(\w+)` \|", block, flags=re.M)
        assert listed == [c.name for c in cols], table
