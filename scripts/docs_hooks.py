"""mkdocs hooks: fill the documentation's generated parts from the code at build time.

A page asks for a part with a marker on a line of its own; the marker is replaced before the page
is rendered, so the reference cannot drift from the code:

* ``<!-- gen:settings collector -->`` / ``<!-- gen:settings dagster -->``: every setting of
  ``collector_service.config.Settings`` / ``orderwatch_dagster.settings.DagsterSettings``
  (variable, type, default, description);
* ``<!-- gen:tables -->``: every Parquet table of ``orderwatch_dagster.tables`` with its columns;
* ``<!-- gen:collections -->``: every MongoDB collection of ``collector_service.schema`` from its
  docstring, with its indexes;
* ``<!-- gen:file NAME -->``: the committed file NAME (repository root) verbatim, as a code block;
* ``<!-- gen:include NAME -->``: the committed Markdown file NAME inline, its headings one level down;
* ``<!-- gen:readme -->``: the README as the site's home page, its links to ``docs/`` made relative.

Used by mkdocs.yml (``hooks:``) and by the docs tests (:func:`render`).
"""

from __future__ import annotations

import ast
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- gen:(\w+)(?: ([\w./-]+))? -->$", flags=re.M)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return render(markdown)


def render(markdown: str) -> str:
    """``markdown`` with every marker replaced by what it asks for (ValueError on an unknown one)."""
    return MARKER.sub(lambda m: _part(m.group(1), m.group(2)), markdown)


def _part(kind: str, arg: str | None) -> str:
    if kind == "settings" and arg in ("collector", "dagster"):
        return settings_table(arg)
    if kind == "tables" and arg is None:
        return tables_reference()
    if kind == "collections" and arg is None:
        return collections_reference()
    if kind == "file" and arg is not None:
        path = ROOT / arg
        lang = {".toml": "toml", ".yaml": "yaml", ".md": "markdown"}.get(path.suffix, "text")
        return f"```{lang}\n{path.read_text().rstrip()}\n```"
    if kind == "readme" and arg is None:
        readme = (ROOT / "README.md").read_text()
        return re.sub(r"\]\(docs/([^)]*)\)", lambda m: f"]({m.group(1) or 'index.md'})", readme)
    if kind == "include" and arg is not None:
        return re.sub(r"^#", "##", (ROOT / arg).read_text().rstrip(), flags=re.M)
    raise ValueError(f"unknown docs marker: gen:{kind} {arg or ''}".rstrip())


# ----- settings ----------------------------------------------------------------------------------
def settings_table(side: str) -> str:
    if side == "collector":
        from collector_service.config import Settings

        fields: dict[str, FieldInfo] = Settings.model_fields
    else:
        from orderwatch_dagster.settings import DagsterSettings

        fields = DagsterSettings.model_fields
    rows = ["| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
    for name, field in fields.items():
        rows.append(f"| `{name.upper()}` | {_type(field.annotation)} | {_default(field.default)} | "
                    f"{_cell(field.description or '')} |")
    return "\n".join(rows)


def _type(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type(a) for a in args if a is not type(None)) + " (optional)"
    names = {bool: "bool", int: "int", float: "number", str: "text", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# ----- Parquet tables ----------------------------------------------------------------------------
def tables_reference() -> str:
    import polars as pl

    from orderwatch_dagster import tables

    def dtype(t: pl.DataType) -> str:
        if isinstance(t, pl.Datetime):
            return "timestamp UTC" if t.time_zone == "UTC" else f"timestamp ({t.time_zone or 'naive'})"
        if isinstance(t, pl.Decimal):
            return f"decimal({t.precision},{t.scale})"
        return str(t)

    parts = []
    for name, cols in tables.TABLES.items():
        rows = [f"### `{name}`", "", "| column | type | meaning |", "|---|---|---|"]
        rows += [f"| `{c.name}` | {dtype(c.dtype)} | {_cell(c.description)} |" for c in cols]
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


# ----- MongoDB collections -----------------------------------------------------------------------
def collections_reference() -> str:
    from collector_service import schema

    source = (ROOT / "collector_service" / "schema.py").read_text()
    tree = ast.parse(source)
    docs: dict[str, str] = {}  # constant name -> its docstring
    for node, after in zip(tree.body, tree.body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = after.value.value
    by_value = {getattr(schema, name): name for name in docs if isinstance(getattr(schema, name, None), str)}
    module_doc = ast.get_docstring(tree) or ""
    parts = []
    for collection in schema.COLLECTIONS:
        text = [f"### `{collection}`", "", rst_to_markdown(docs[by_value[collection]])]
        if collection == schema.ORDERS:
            text += ["", rst_to_markdown(module_doc[module_doc.index("``trader_orders`` holds"):]),
                     "", "**The book fields** (`BOOK_FIELDS`):", "", rst_to_markdown(docs["BOOK_FIELDS"])]
        indexes = schema.INDEXES.get(collection, ())
        if indexes:
            listed = ", ".join(
                ("unique " if unique else "") + "(" + ", ".join(k + (" desc" if d < 0 else "") for k, d in keys) + ")"
                for keys, unique in indexes)
            text += ["", f"Indexes: {listed}."]
        parts.append("\n".join(text))
    return "\n\n".join(parts)


def rst_to_markdown(text: str) -> str:
    """The docstrings' reStructuredText as Markdown: inline literals, roles, and ``::`` literal blocks."""
    text = re.sub(r":(?:data|func|mod|meth|class|attr):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        out += [line.rstrip()[:-1], "", "```text"]
        i += 1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            out.append(lines[i][4:] if lines[i].startswith("    ") else lines[i])
            i += 1
        while out[-1] == "":
            out.pop()
        out += ["```", ""]
    return "\n".join(out).strip()
