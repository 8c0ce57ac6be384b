"""Test sessions side by side (a soak beside ``make test``) never hand out the same port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.mongo_server import PORTS_FROM, SESSION_PORTS, SLOT_ENV, claim_session_slot, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_another_session_claims_another_slot_and_takes_its_ports_there() -> None:
    ours = claim_session_slot()
    mine = free_port()
    assert PORTS_FROM + ours * SESSION_PORTS < mine < PORTS_FROM + (ours + 1) * SESSION_PORTS
    # a process started apart from this session (no inherited slot, not an xdist worker)
    env = {k: v for k, v in os.environ.items() if k not in (SLOT_ENV, "PYTEST_XDIST_WORKER")}
    code = "from tests.mongo_server import claim_session_slot, free_port; print(claim_session_slot(), free_port())"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    slot, port = map(int, out.stdout.split())
    assert slot != ours
    assert PORTS_FROM + slot * SESSION_PORTS < port < PORTS_FROM + (slot + 1) * SESSION_PORTS
