"""Run a command while CPU-bound busy loops compete for the cores, and stop the loops whatever
the command's fate (exit, failure, Ctrl-C, SIGTERM).

    python -m scripts.under_load [--spinners N] -- COMMAND [ARG...]

Exits with the command's exit status. `make test-under-load` runs the whole suite this way, to
show that no test depends on having the machine to itself.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from types import FrameType

SPIN = "while True: pass"


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spinners", type=int, default=2, help="busy-loop processes to run (default 2)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")

    def terminate(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    spinners: list[subprocess.Popen[bytes]] = []
    try:
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.spinners)]
        print(f"under_load: {len(spinners)} busy loops, pids {[p.pid for p in spinners]}", file=sys.stderr)
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
    finally:
        _stop(spinners)


if __name__ == "__main__":
    sys.exit(main())
