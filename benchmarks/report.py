"""Figures, the printed table and ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

VERSIONED = ("msgspec", "orjson", "polars", "pyarrow", "pymongo", "nx-27017", "dagster", "websockets", "psutil")


@dataclass
class Row:
    """One measured figure; ``target`` is the goal as text and ``met`` whether it was reached."""

    label: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    """What one benchmark measured: its figures, correctness checks and notes."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(label, value, target, met))

    def ratio(self, label: str, value: float, *, at_most: float | None = None, at_least: float | None = None) -> None:
        """A ratio row with its target (``at_most`` / ``at_least``)."""
        if at_most is not None:
            self.add(label, f"{value:.2f}x", f"<= {at_most:g}x", value <= at_most)
        elif at_least is not None:
            self.add(label, f"{value:.2f}x", f">= {at_least:g}x", value >= at_least)
        else:
            self.add(label, f"{value:.2f}x")


def _mark(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def table(sections: list[Section]) -> str:
    """A plain-text table of every figure, one block per benchmark."""
    lines = []
    for s in sections:
        lines.append(f"== {s.title}")
        width = max([len(r.label) for r in s.rows] + [10])
        for r in s.rows:
            lines.append(f"  {r.label:<{width}}  {r.value:>16}  {r.target:>10}  {_mark(r.met)}")
        for name, ok in s.checks.items():
            lines.append(f"  check {name}: {'ok' if ok else 'FAILED'}")
        lines.extend(f"  note: {n}" for n in s.notes)
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Where and with what the newest run happened (each section says when)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
        mem_text = f"{mem:.1f} GiB"
    except (OSError, ValueError, IndexError):
        mem_text = "?"
    versions = []
    for dist in VERSIONED:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores, {mem_text} RAM, {platform.platform()}",
        "python": platform.python_version(),
        "versions": ", ".join(versions),
        "mongo": (os.environ.get("MONGO_URI") and "MONGO_URI (external server)") or "nx-27017 (embedded)",
    }


MARKER = "<!-- benchmark: {} -->"
"""Opens each section of RESULTS.md: a run of some benchmarks replaces only their sections."""

BY_HAND = "<!-- written by hand (each note dated): kept when the benchmark is re-run -->"
"""Ends a section's generated part: the analysis written under it by hand stays when the
benchmark is re-run (it used to be dropped with the table it explained)."""


def section_markdown(s: Section, measured: str) -> str:
    """One benchmark's section: its marker, heading (with when and how it was measured), table,
    checks and notes."""
    out = [MARKER.format(s.name), f"## {s.title}", "", f"Measured {measured}.", "",
           "| figure | value | target | met |", "|---|---:|---:|:---:|"]
    out += [f"| {r.label} | {r.value} | {r.target} | {_mark(r.met)} |" for r in s.rows]
    out.append("")
    if s.checks:
        out += [f"- check `{name}`: {'ok' if ok else 'FAILED'}" for name, ok in s.checks.items()]
    out += [f"- {n}" for n in s.notes]
    return "\n".join(out) + "\n"


def markdown(sections: list[Section], info: dict[str, str], measured: str, previous: str = "") -> str:
    """RESULTS.md: the machine, then one section per benchmark. The sections of ``previous`` (the
    file as it was) that this run did not measure are kept as they were, each with its own date."""
    head = [
        "# Benchmark results",
        "",
        "Recorded by `python -m benchmarks` (`--only NAME` re-runs one section and keeps the others;",
        "what is written by hand under a section's `written by hand` marker stays when it is re-run).",
        "Ratios are measured in the same run, side by side; absolute times on this shared machine are",
        "noisy, so each section says when it was measured and the load average then.",
        "",
        *(f"- **{k}**: {v}" for k, v in info.items()),
        "",
    ]
    blocks = _blocks(previous)
    for s in sections:
        kept = blocks.get(s.name, "")
        blocks[s.name] = section_markdown(s, measured) + (kept[kept.index(BY_HAND):] if BY_HAND in kept else "")
    return "\n".join(head) + "\n" + "\n".join(blocks.values())


def _blocks(text: str) -> dict[str, str]:
    """The sections of a RESULTS.md by benchmark name, in file order (text before the first marker
    is the head, rewritten by every run)."""
    blocks: dict[str, str] = {}
    name, lines = None, []
    for line in text.splitlines():
        if line.startswith("<!-- benchmark: ") and line.endswith(" -->"):
            if name is not None:
                blocks[name] = "\n".join(lines).rstrip("\n") + "\n"
            name, lines = line[len("<!-- benchmark: "):-len(" -->")], []
        if name is not None:
            lines.append(line)
    if name is not None:
        blocks[name] = "\n".join(lines).rstrip("\n") + "\n"
    return blocks
