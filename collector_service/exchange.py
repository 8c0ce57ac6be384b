"""Facts about Hyperliquid that the collector must respect, in one place.

Each value names where it comes from (see PROTOCOL.md §2-§3 in the project's research notes:
the official "Rate limits and user limits" and "Timeouts and heartbeats" pages, and the
observed server behaviour collected from peer SDKs).
"""

from __future__ import annotations

from typing import Final

MAX_USERS_PER_IP: Final = 10
"""Unique users across user-specific subscriptions, per IP, across all connections (docs)."""

MAX_CONNECTIONS_PER_IP: Final = 10
"""WebSocket connections per IP (2026 docs; older docs said 100)."""

MAX_NEW_CONNECTIONS_PER_MINUTE: Final = 30
"""New WebSocket connections per minute per IP (2026 docs)."""

MAX_SUBSCRIPTIONS_PER_IP: Final = 1000
"""WebSocket subscriptions per IP (docs; error "Cannot subscribe to more than 1000 channels.")."""

MAX_MESSAGES_PER_MINUTE: Final = 2000
"""Client-to-server WebSocket messages per minute per IP (docs)."""

REST_WEIGHT_PER_MINUTE: Final = 1200
"""Aggregated REST weight per minute per IP (docs); HTTP 429 past it."""

WEIGHT_LIGHT: Final = 2
"""Weight of clearinghouseState and orderStatus info requests (docs)."""

WEIGHT_DEFAULT: Final = 20
"""Weight of every other documented info request (docs)."""

ITEMS_PER_EXTRA_WEIGHT: Final = 20
"""historicalOrders / userFills add one weight per 20 items returned (docs)."""

HISTORICAL_ORDERS_LIMIT: Final = 2000
"""historicalOrders returns at most the 2000 most recent orders (docs)."""

FILLS_PAGE_MIN: Final = 500
"""userFillsByTime returns at most 2000 fills per response (docs), and time-range answers may be
capped at 500 (PROTOCOL.md §3.3): only a page shorter than 500 is surely the last."""

IDLE_TIMEOUT_S: Final = 60.0
"""The server closes a connection it has sent nothing on for 60 s (docs)."""

PING_INTERVAL_S: Final = 30.0
"""Application ping cadence; nktkas pings every 30 s (PROTOCOL.md §2.2)."""

PONG_DEADLINE_S: Final = 10.0
"""Reconnect when neither pong nor data arrives this long after a ping (nktkas uses 10 s)."""

SUBSCRIBE_PACING_S: Final = 0.05
"""Delay between subscribe messages on one connection (cryptoOS paces at ~50 ms)."""

SUBSCRIBE_ACK_TIMEOUT_S: Final = 10.0
"""A refused subscribe never gets an ack; give up waiting after this (bloxwap §6)."""

USER_CAP_ERROR_PREFIX: Final = "Cannot track more than"
"""Error text when the per-IP user cap is hit: "Cannot track more than 10 total users."."""

SUBSCRIPTION_CAP_ERROR_PREFIX: Final = "Cannot subscribe to more than"
"""Error text when the per-IP subscription cap is hit: "Cannot subscribe to more than 1000 channels."."""

ERROR_PREFIXES_CAPACITY: Final = (
    USER_CAP_ERROR_PREFIX,
    SUBSCRIPTION_CAP_ERROR_PREFIX,
    "Cannot send more than",
)
"""Error frames that mean a cap was hit; retrying at once only makes them worse."""

PARSE_ERROR_PREFIX: Final = "Error parsing JSON into valid websocket request:"
"""Error text for a request the server cannot parse; it echoes the request after the colon."""

MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Largest frame the collector accepts. Real webData2 frames are ~100 KB and openOrders for a
busy trader tens of KB; anything near this size is an error, not data."""

REPLACE_WINDOW_MS: Final = 1000
"""A modify is one action (PROTOCOL.md §4.3): the replacement is placed when the old order is
cancelled, so their exchange times differ by at most this much (one block, with room to spare)."""

INFERRED_REPLACE_WINDOW_MS: Final = 0
"""Without a cloid to say so, a replacement is accepted only when it was placed in the very
millisecond (block) the old order was cancelled: another order of the same kind placed a moment
later is not taken for it. If the exchange's two times ever differ, such modifies read as a cancel
and a new order, never as a wrong link."""
