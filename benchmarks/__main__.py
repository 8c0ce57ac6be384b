"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmarks, print the table and
write their sections of ``benchmarks/RESULTS.md`` (the sections of benchmarks not run are kept)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    context,
    e2e,
    extraction,
    frames,
    journal,
    leaderboard,
    marks,
    memory,
    node,
    polling,
    scorecards,
    transforms,
)
from benchmarks.report import machine, markdown, table

BENCHMARKS = {
    "frames": frames.run,
    "e2e": e2e.run,
    "memory": memory.run,
    "transforms": transforms.run,
    "extraction": extraction.run,
    "polling": polling.run,
    "context": context.run,
    "node": node.run,
    "leaderboard": leaderboard.run,
    "journal": journal.run,
    "marks": marks.run,
    "scorecards": scorecards.run,
}
RESULTS = Path(__file__).parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs: a smoke run in well under a minute each")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--results", type=Path, default=RESULTS, 
                        help="where to write the markdown (default: %(default)s)")
    args = parser.parse_args(argv)
    sections = []
    started_at, load = datetime.now(UTC), os.getloadavg()[0]
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        section = BENCHMARKS[name](quick=args.quick)
        section.notes.append(f"benchmark took {time.monotonic() - started:.0f} s")
        sections.append(section)
        print(table([section]), flush=True)
    command = "python -m benchmarks" + (" --quick" if args.quick else "") + (f" --only {' '.join(args.only)}"
                                                                            if args.only else "")
    measured = f"{started_at:%Y-%m-%d %H:%M} UTC by `{command}`, load average {load:.1f} at the start"
    previous = args.results.read_text() if args.results.exists() else ""
    args.results.write_text(markdown(sections, machine(), measured, previous))
    print(f"wrote {args.results}", file=sys.stderr)
    failed = [f"{s.name}:{c}" for s in sections for c, ok in s.checks.items() if not ok]
    if failed:
        print(f"correctness checks FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
