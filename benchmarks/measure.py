"""Timing and child-process helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.mongo_server import NxServer


def per_call(fns: dict[str, Callable[[], Any]], *, number: int, repeat: int,
             statistic: Callable[[list[float]], float] = statistics.median) -> dict[str, float]:
    """Seconds per call of each function: the median (or ``statistic``) over ``repeat`` rounds of
    ``number`` calls.

    The rounds interleave the functions so that every one of them sees the same machine noise.
    ``min`` over many short rounds gives the time with the CPU to itself, which a median on a busy
    shared machine does not (it includes waiting for a core).
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm caches and lazy imports
        fn()
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistic(s) for name, s in samples.items()}


def run_child(module: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; it prints one JSON object last."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed with exit code {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def peak_rss() -> int:
    """This process's peak resident set in bytes (``VmHWM``: unlike ``ru_maxrss`` it is not
    inherited across ``exec`` from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


@contextmanager
def mongo_server(folder: Path) -> Iterator[tuple[str, NxServer | None]]:
    """The MongoDB a benchmark measures against: ``MONGO_URI`` when set, else an nx-27017 started
    in ``folder`` (stopped on exit). Yields ``(uri, the nx-27017 server or None)``."""
    uri = os.environ.get("MONGO_URI")
    if uri:
        yield uri, None
        return
    nx = NxServer(folder / "nx")
    nx.start()
    try:
        yield nx.uri, nx
    finally:
        nx.stop()
