"""The scenario's days, traders and shared helpers: timestamps, the book context stamped on events, decimals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

D1, D2, D3 = "2026-11-23", "2026-11-24", "2026-11-25"
A = "0x" + "a" * 40
B = "0x" + "b" * 40
C = "0x" + "c" * 40


def at(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=UTC)


def book(side: str, px: float, mid: float, *, ahead: float, share: float | None, depth: float, when: datetime) -> dict:
    """The order-book context the collector stamps on a new/updated event (schema.BOOK_FIELDS)."""
    away = (mid - px) if side == "B" else (px - mid)
    return {
        "bookMidPx": mid,
        "distanceBps": away / mid * 1e4,
        "depthAheadUsd": ahead,
        "levelShare": share,
        "bookDepth1pctUsd": depth,
        "bookAt": when,
    }


BOOK_A101 = book("B", 60000.0, 60030.0, ahead=850000.0, share=0.25, depth=2_000_000.0, when=at(D1, "22:00:04"))
BOOK_A102 = book("A", 3100.0, 3050.0, ahead=310000.0, share=1.0, depth=155_000.0, when=at(D2, "09:59:59"))
BOOK_B203 = book("A", 0.05, 0.0502, ahead=0.0, share=None, depth=8.0, when=at(D2, "13:59:59"))  # crossing
BOOK_C320 = book("A", 3000.0, 2995.0, ahead=150000.0, share=0.5, depth=400_000.0, when=at(D2, "09:59:59"))
BOOK_C331 = book("B", 200.0, 200.5, ahead=60000.0, share=0.8, depth=250_000.0, when=at(D2, "11:29:59"))
NO_BOOK = dict.fromkeys(BOOK_A101)


def dec(s: str) -> Decimal:
    return Decimal(s)
