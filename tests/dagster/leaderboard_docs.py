"""Real-shaped leaderboard documents for tests (../shared/hyperliquid/LEADERBOARD.md)."""

from __future__ import annotations

import json
from typing import Any

WINDOWS = ("day", "week", "month", "allTime")


def row(
    address: str,
    account: str = "50000.0",
    *,
    day: tuple[str, str, str] = ("100.0", "0.002", "200000.0"),
    month: tuple[str, str, str] = ("1000.0", "0.02", "5000000.0"),
    all_time: tuple[str, str, str] = ("5000.0", "0.1", "90000000.0"),
    name: str | None = None,
) -> dict[str, Any]:
    """One row; week mirrors month."""
    perf = {"day": day, "week": month, "month": month, "allTime": all_time}
    return {
        "ethAddress": address,
        "accountValue": account,
        "windowPerformances": [[w, dict(zip(("pnl", "roi", "vlm"), perf[w], strict=True))] for w in WINDOWS],
        "prize": 0,
        "displayName": name,
    }


def addr(i: int) -> str:
    return f"0x{i:040x}"


def doc(rows: list[dict[str, Any]], **dumps: Any) -> bytes:
    return json.dumps({"leaderboardRows": rows}, **dumps).encode()
