"""The seeded ``trader_watchlist`` documents and the labels and tags the tables show per trader."""

from __future__ import annotations

from typing import Any

from .base import D1, D2, A, B, C, at


def watchlist() -> list[dict[str, Any]]:
    """``trader_watchlist`` documents (schema.WATCHLIST): A and B are labelled, B is no longer
    watched (it keeps its label), C is not on the list (label null, tags empty)."""
    return [
        {"_id": A, "label": "Whale A", "tags": ["whales", "btc"], "watching": True, "updatedAt": at(D1, "00:00:00")},
        {"_id": B, "label": "Bee", "tags": [], "watching": False, "updatedAt": at(D2, "00:00:00")},
    ]


LABELS = {A: ("Whale A", ["whales", "btc"]), B: ("Bee", []), C: (None, [])}
"""What the tables show per trader: ``(label, tags)``."""
