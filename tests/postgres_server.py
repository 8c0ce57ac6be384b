"""Start and stop a real PostgreSQL (Debian's ``postgresql`` package) on loopback for tests.

``initdb`` and ``postgres`` refuse to run as root, so under root the cluster belongs to ``nobody``
(its folder is created under the system temporary folder and handed to that user); as any other
user they run as that user. Password authentication (scram) on 127.0.0.1 only, no Unix socket
outside the cluster's folder, fsync off (a test's cluster is thrown away).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from tests.mongo_server import free_port, stop_group


def _newest_bin() -> Path:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _newest_bin()
USER = "orderwatch"
PASSWORD = "pg-test-secret"


class PgServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="orderwatch-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def url(self, password: str = PASSWORD, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        proc = subprocess.run(args, cwd=self.dir, capture_output=True, text=True, timeout=120, **self._as)
        if proc.returncode:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")

    def start(self, timeout: float = 60.0) -> None:
        if not (PG_BIN / "postgres").exists():
            raise RuntimeError(f"no PostgreSQL under {PG_BIN}: run scripts/system_deps.sh (Debian's postgresql)")
        pwfile = self.dir / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        data = self.dir / "data"
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync")
        with (self.dir / "postgres.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(self.dir), "-F", "-c", "max_connections=200"],
                cwd=self.dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log()}")
            try:
                psycopg2.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres did not accept connections within {timeout}s: {self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.dir / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def create_database(self, name: str) -> str:
        """A fresh database; returns its URL."""
        conn = psycopg2.connect(self.url())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(database=name)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGINT, grace_s=30)  # SIGINT: postgres's fast shutdown
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
