"""The documentation site builds strictly, and its generated references cover the code.

``mkdocs build --strict`` fails on a broken link, a page missing from the nav, an anchor that no
longer exists or a marker the hooks do not know; the references are generated from the settings
classes and the schemas (scripts/docs_hooks.py), and these tests check the built pages hold every
setting, every column and every collection.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector_service import schema
from collector_service.config import Settings
from orderwatch_dagster import tables
from orderwatch_dagster.settings import DagsterSettings
from scripts import docs_hooks

ROOT = Path(__file__).resolve().parents[2]


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # the theme's banner about its successor
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stderr
    return out


def page_text(site: Path, page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", (site / page / "index.html").read_text()))


def code_cells(site: Path, page: str) -> set[str]:
    return set(re.findall(r"<td><code>([^<]+)</code></td>", (site / page / "index.html").read_text()))


def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    pages = {p.stem for p in (ROOT / "docs").glob("*.md")}
    built = {p.parent.name for p in site.glob("*/index.html")}
    assert pages - {"index"} <= built


def test_every_setting_is_in_the_configuration_reference(site: Path) -> None:
    cells = code_cells(site, "configuration")
    for fields in (Settings.model_fields, DagsterSettings.model_fields):
        missing = {name.upper() for name in fields} - cells
        assert not missing, missing
    text = page_text(site, "configuration")
    described = str(Settings.model_fields["trader_books_enabled"].description).replace("`", "")
    assert described in " ".join(text.split())  # the whole description, as the code has it


def test_every_table_column_is_in_the_table_reference(site: Path) -> None:
    raw = (site / "tables" / "index.html").read_text()
    for table, cols in tables.TABLES.items():
        start = raw.index(f'id="{table}"')
        end = min((raw.index(f'id="{t}"') for t in tables.TABLES if raw.index(f'id="{t}"') > start), default=None)
        listed = re.findall(r"<td><code>(\w+)</code></td>", raw[start:end])
        assert listed == [c.name for c in cols], table


def test_every_collection_and_book_field_is_in_the_collections_reference(site: Path) -> None:
    raw = (site / "collections" / "index.html").read_text()
    for name in schema.COLLECTIONS:
        assert f'id="{name}"' in raw, name
    assert set(schema.INDEXES) <= set(schema.COLLECTIONS)
    text = page_text(site, "collections")
    for field in schema.BOOK_FIELDS:  # in the trader_orders field list and the book fields' definitions
        assert len(re.findall(rf"\b{field}\b", text)) >= 2, field


def test_the_dagster_side_declares_every_variable_it_reads() -> None:
    read = set()
    for path in (ROOT / "orderwatch_dagster").rglob("*.py"):
        read |= set(re.findall(r'"((?:ORDERWATCH|DAGSTER|MONGO|HYPERLIQUID)_[A-Z0-9_]+)"', path.read_text()))
    assert read == {name.upper() for name in DagsterSettings.model_fields}


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    hooks = ROOT / "scripts" / "docs_hooks.py"  # generating from this checkout's code
    config = (ROOT / "mkdocs.yml").read_text().replace("scripts/docs_hooks.py", str(hooks))
    (tmp_path / "mkdocs.yml").write_text(config)
    page = tmp_path / "docs" / "limits.md"
    page.write_text(page.read_text() + "\nSee [the old section](collections.md#no-such-anchor) and [gone](gone.md).\n")
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "no-such-anchor" in proc.stderr and "gone.md" in proc.stderr


def test_an_unknown_marker_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown docs marker: gen:tabels"):
        docs_hooks.render("<!-- gen:tabels -->")


def test_the_readme_is_short_and_keeps_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert ("make demo    # the whole system on this machine, on embedded defaults; Ctrl-C stops it\n"
            "make test    # the whole test suite; .ci/run calls exactly this\n") in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
