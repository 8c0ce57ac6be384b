"""A hand-built two-day scenario of collector documents, and the tables worked out by hand.

Days: D1 = 2026-11-23, D2 = 2026-11-24 (UTC); one event on D3 must never show up.
Trader A: 100 canceled on D1; 101 spans D1->D2 (partial fill then filled); 103 is 101's TP/SL
child canceled when 101 filled; 102 amended in place (same oid: price, then size across the alert
threshold) and canceled; 104 closed with status still unknown.
Trader B: 201 known only from a REST-recovered close (filled, sz "0.0"); 202 partially filled,
its update has no observedAt (falls back to createdAt), still open at D2's end (closes on D3);
203 rejected.
Trader C (modifies are cancel-and-replace, see ``orders_c``): amend chains with a cloid and
without (inferred), one spanning D1->D2, a spurious link from a filled order, a plain cancel, a
partial fill then fill, a spot coin ("@107") and a HIP-3 coin ("xyz:TSLA" on dex "xyz").
Documents carry ``dex`` except the old ones marked ``dex=None`` (written before ``dex`` existed).

Fills (``fills``): A-101 filled as maker in two fills (0.5, then the rest 1.5); A-190 on D1 and
C-370 on D2 are taker IOCs that filled on arrival and never appeared in an event (C-370 a spot buy
whose fee is in the bought token, HYPE); B-201 crossed for 40 on arrival (taker) and the rest 60
filled as maker; B-202 partially filled (its last fill is on D3); C's amend chain 320 -> 321 -> 322
filled on 321 and 322; C-350 on the HIP-3 coin xyz:TSLA (with builder fees); C-360 closed a long
(closedPnl). Fees are in USDC except C-370's. Book context (``BOOK_*``) on the new events of
A-101, B-203, C-320 and C-331 and on A-102's size update.

The package's modules, by what they build: ``base`` (days, traders, ``at``, the book context),
``order_docs`` (document builders), ``orders`` and ``orders_c`` (the seeded order events),
``fills``, ``positions``, ``watchlist`` (the other seeded documents) and the ``expected_*``
modules (each table worked out by hand). Tests read everything from here as ``sc.X``.
"""

from __future__ import annotations

from .base import BOOK_A101, BOOK_A102, BOOK_B203, BOOK_C320, BOOK_C331, D1, D2, D3, NO_BOOK, A, B, C, at, book, dec
from .expected_alerts import ALERT_COLS, ALERTS_D1, ALERTS_D2
from .expected_fills import FILL_COLS, FILLS_D1, FILLS_D2
from .expected_lifecycles import LIFECYCLE_COLS, LIFECYCLES_D1, LIFECYCLES_D2, NOTHING_TRADED
from .expected_snapshots import (
    OPEN_ORDER_COLS,
    OPEN_ORDERS_D1,
    OPEN_ORDERS_D2,
    POSITION_COLS,
    POSITIONS_D1,
    POSITIONS_D2,
)
from .expected_stats import FILL_STATS_COLS, NO_FILL_STATS, STATS_COLS, STATS_D1, STATS_D2
from .fills import fill, fills
from .order_docs import order, replace, write_as_collector
from .orders import orders
from .orders_c import orders_c
from .positions import position, positions
from .watchlist import LABELS, watchlist

__all__ = [
    "ALERTS_D1",
    "ALERTS_D2",
    "ALERT_COLS",
    "BOOK_A101",
    "BOOK_A102",
    "BOOK_B203",
    "BOOK_C320",
    "BOOK_C331",
    "D1",
    "D2",
    "D3",
    "FILLS_D1",
    "FILLS_D2",
    "FILL_COLS",
    "FILL_STATS_COLS",
    "LABELS",
    "LIFECYCLES_D1",
    "LIFECYCLES_D2",
    "LIFECYCLE_COLS",
    "NOTHING_TRADED",
    "NO_BOOK",
    "NO_FILL_STATS",
    "OPEN_ORDERS_D1",
    "OPEN_ORDERS_D2",
    "OPEN_ORDER_COLS",
    "POSITIONS_D1",
    "POSITIONS_D2",
    "POSITION_COLS",
    "STATS_COLS",
    "STATS_D1",
    "STATS_D2",
    "A",
    "B",
    "C",
    "at",
    "book",
    "dec",
    "fill",
    "fills",
    "order",
    "orders",
    "orders_c",
    "position",
    "positions",
    "replace",
    "watchlist",
    "write_as_collector",
]
