"""Start and stop a real nx-27017 (MongoDB wire protocol) server on loopback for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo

PORTS_FROM, SESSION_PORTS, SESSIONS, WORKER_SLICES = 20_000, 2_500, 5, 8
"""Test servers listen below the kernel's ephemeral range (32768-60999): a port handed out there
is free now, but any client socket may take it before a server binds it, or while a killed one
restarts on it (a collector restarted after kill -9 could not bind its health port once).

So may another test session: a soak run beside ``make test`` once lost its collector's health port
to it. Each session (a pytest run with its xdist workers, or a soak) claims one of ``SESSIONS``
slots of ``SESSION_PORTS`` ports by listening on the slot's first port for as long as it runs
(:func:`claim_session_slot`); the rest of the slot is split into one slice for the process that
is not an xdist worker and ``WORKER_SLICES`` for the workers, so neither two sessions nor two
workers pick the same port. (Worker ``gwN`` takes slice ``N mod WORKER_SLICES``: more workers, or
a worker restarted after a crash under a new number, share a slice and only the bind check.)"""

SLOT_ENV = "ORDERWATCH_TEST_PORT_SLOT"
_slot_claim: socket.socket | None = None
_next_port: int | None = None


def claim_session_slot() -> int:
    """This session's slot of ports: the one inherited from the process that started this one
    (xdist workers, via the environment), else the first slot no other session holds, claimed
    by listening on its first port until this process ends."""
    global _slot_claim
    inherited = os.environ.get(SLOT_ENV)
    if inherited is not None:
        return int(inherited)
    for slot in range(SESSIONS):
        claim = socket.socket()
        try:
            claim.bind(("127.0.0.1", PORTS_FROM + slot * SESSION_PORTS))
            claim.listen()
        except OSError:
            claim.close()
            continue
        _slot_claim = claim
        os.environ[SLOT_ENV] = str(slot)
        return slot
    raise RuntimeError(f"all {SESSIONS} test port slots from {PORTS_FROM} are held by other test sessions")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now (see :data:`PORTS_FROM`)."""
    global _next_port
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) % WORKER_SLICES + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    per_process = (SESSION_PORTS - 1) // (WORKER_SLICES + 1)
    first = PORTS_FROM + claim_session_slot() * SESSION_PORTS + 1 + index * per_process
    for _ in range(per_process):
        port = _next_port if _next_port is not None and first <= _next_port < first + per_process else first
        _next_port = port + 1
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no conflict
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + per_process - 1} on {host}")


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Send ``sig`` to a server started with ``start_new_session``; SIGKILL it after ``grace_s``."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class NxServer:
    """One nx-27017 process with its own data folder, pid file and port.

    ``stop()`` and ``start()`` may be called repeatedly (an outage test stops the database and
    brings it back on the same port with the same data).
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        exe = Path(sys.executable).with_name("nx-27017")
        self.proc = subprocess.Popen(
            [
                str(exe),
                "--data-dir", str(self.data_dir),
                "--host", "127.0.0.1",
                "-p", str(self.port),
                "--pid-file", str(self.data_dir / "nx.pid"),
                "--log-file", str(self.data_dir / "nx.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nx-27017 exited with {self.proc.returncode}; see {self.data_dir}/nx.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nx-27017 did not listen on port {self.port} within {timeout}s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_group(self.proc, sig)
        self.proc = None

    def client(self, **kwargs: object) -> pymongo.MongoClient:
        return pymongo.MongoClient(self.uri, tz_aware=True, serverSelectionTimeoutMS=5000, **kwargs)
