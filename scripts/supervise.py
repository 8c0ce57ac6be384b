"""Run child processes each in its own process group, with a log file, and stop them for sure.

A process group lets one signal reach a service and every helper it spawned (``dagster dev``
starts a webserver, a daemon and code servers), so nothing is orphaned. Children get default
signal dispositions even when this program was started in the background with SIGINT ignored.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Spec:
    """What to run. ``stop_signal`` asks it to finish cleanly; ``stop_timeout`` is how long it gets
    before SIGKILL. ``stop_alone`` processes are signalled first and waited for last (they depend
    on nothing the others provide), so their slow shutdown overlaps everyone else's."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 20.0
    stop_alone: bool = False


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


@dataclass
class Process:
    """A running :class:`Spec`: the leader of its own process group, output appended to ``log``."""

    spec: Spec
    log: Path
    popen: subprocess.Popen[bytes] = field(repr=False)

    @classmethod
    def start(cls, spec: Spec, logs: Path) -> Process:
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{spec.name}.log"
        with open(log, "ab") as out:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            out.write(f"----- {stamp} starting: {' '.join(spec.argv)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                list(spec.argv), cwd=spec.cwd, env=dict(spec.env), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, process_group=0, preexec_fn=_default_signals,
            )
        return cls(spec, log, popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """The leader's exit code, or None while it runs."""
        return self.popen.poll()

    def group_alive(self) -> bool:
        """Whether any process of the group is still there (the leader is reaped first)."""
        self.popen.poll()
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait_group(self, timeout: float) -> bool:
        """Wait until the whole group is gone; False if some member outlived ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.group_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def finish(self, report: Callable[[str], None]) -> None:
        """Wait for a signalled group; SIGKILL whatever outlives the stop timeout."""
        if self.wait_group(self.spec.stop_timeout):
            return
        report(f"{self.spec.name} did not stop within {self.spec.stop_timeout:.0f}s; killing its process group")
        self.signal_group(signal.SIGKILL)
        self.wait_group(10.0)

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(processes: Sequence[Process], report: Callable[[str], None]) -> None:
    """Stop in reverse start order (each waited for before the next is signalled, so a writer
    can flush before its database goes away); ``stop_alone`` processes overlap the rest."""
    alone = [p for p in processes if p.spec.stop_alone]
    for proc in alone:
        proc.signal_group(proc.spec.stop_signal)
    for proc in reversed([p for p in processes if not p.spec.stop_alone]):
        proc.signal_group(proc.spec.stop_signal)
        proc.finish(report)
    for proc in alone:
        proc.finish(report)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
