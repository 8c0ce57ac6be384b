"""Facts about the Hyperliquid exchange that the simulator enforces, each with its source.

Sources are cited as in /work/shared/hyperliquid/PROTOCOL.md (section numbers in brackets).
"""

from __future__ import annotations

# Per source IP, official "Rate limits and user limits" page (2026 version) [§3.1].
MAX_USERS_PER_IP = 10  # "Maximum of 10 unique users across user-specific websocket subscriptions"
MAX_CONNECTIONS_PER_IP = 10  # "Maximum of 10 websocket connections" (was 100 in older docs)
MAX_NEW_CONNECTIONS_PER_MIN = 30  # "Maximum of 30 new websocket connections per minute"
MAX_SUBSCRIPTIONS_PER_IP = 1000  # "Maximum of 1000 websocket subscriptions"
MAX_MESSAGES_PER_MIN = 2000  # "Maximum of 2000 messages sent to Hyperliquid per minute"
REST_WEIGHT_PER_MIN = 1200  # "REST requests share an aggregated weight limit of 1200 per minute"

# Info request weights [§3.1]: weight 2 for a few light requests, 20 for all others, and
# +1 per 20 items returned for the list endpoints.
LIGHT_INFO_WEIGHT = 2
LIGHT_INFO_TYPES = frozenset(
    {
        "l2Book",
        "allMids",
        "clearinghouseState",
        "orderStatus",
        "spotClearinghouseState",
        "exchangeStatus",
    }
)
DEFAULT_INFO_WEIGHT = 20
PER_ITEM_WEIGHT_TYPES = frozenset({"historicalOrders", "userFills", "userFillsByTime", "twapHistory"})
ITEMS_PER_EXTRA_WEIGHT = 20

# Response sizes, official Info endpoint page [§3.3].
HISTORICAL_ORDERS_LIMIT = 2000  # "at most 2000 most recent historical orders"
USER_FILLS_LIMIT = 2000  # "at most 2000 most recent fills"
FILLS_RETAINED = 10000  # "only the 10000 most recent fills are available"

# Keep-alive [§2.2]: "The server will close any connection if it hasn't sent a message to it
# in the last 60 seconds."
IDLE_TIMEOUT_S = 60.0
# Connections are closed with code 1000, reason "Expired", after ~3 h [§2.3].
EXPIRED_CLOSE_CODE = 1000
EXPIRED_REASON = "Expired"
MAX_CONNECTION_AGE_S = 3 * 3600.0
# Full-state re-push cadence of openOrders/clearinghouseState: ~4-5 s [§2.1].
PUSH_INTERVAL_S = 4.0

# Error frame texts [§1.1]; `{n}` is the configured cap.
ERR_TOO_MANY_USERS = "Cannot track more than {n} total users."
ERR_TOO_MANY_SUBSCRIPTIONS = "Cannot subscribe to more than {n} channels."
ERR_TOO_MANY_MESSAGES = "Cannot send more than {n} messages per minute."
ERR_ALREADY_SUBSCRIBED = "Already subscribed: {sub}"
ERR_ALREADY_UNSUBSCRIBED = "Already unsubscribed: {sub}"
ERR_PARSE = "Error parsing JSON into valid websocket request: {raw}"

# Subscription types served, with the user-specific ones that count towards the user cap.
USER_SUBSCRIPTION_TYPES = frozenset(
    {"openOrders", "clearinghouseState", "webData2", "userFills", "twapStates", "orderUpdates"}
)
# Subscriptions whose frames carry the user's open orders (used for visibility records).
ORDER_SUBSCRIPTION_TYPES = frozenset({"openOrders", "webData2"})

# l2Book [§1.1; SAMPLE-NOTES §5]: not user-specific (no user slot, one of the 1000
# subscriptions). The ack echoes the subscription normalized with its defaults,
# `{"type":"l2Book","coin":…,"nSigFigs":null,"mantissa":null,"fast":false}` (measured 2026;
# 2025 captures show no "fast" key), and an unsubscribe matches on the normalized form.
# Frames `{"coin","time","levels":[[bids…],[asks…]]}`, each level `{px, sz, n}`, best first,
# 20 levels a side; a "fast" subscription's frames carry 5 levels and `"fast":true`
# (hftbacktest capture). nSigFigs: 2..5 or null (full precision); mantissa: 1, 2 or 5, only
# with nSigFigs 5 (official Subscriptions page).
L2_BOOK_DEPTH = 20
L2_BOOK_FAST_DEPTH = 5
L2_BOOK_SIG_FIGS = frozenset({2, 3, 4, 5})
L2_BOOK_MANTISSAS = frozenset({1, 2, 5})

# Order statuses [§4.1]; any status other than "open" and "triggered" ends an order.
OPEN = "open"
FILLED = "filled"
CANCELED = "canceled"
TRIGGERED = "triggered"
REJECTED = "rejected"
MARGIN_CANCELED = "marginCanceled"
SIBLING_FILLED_CANCELED = "siblingFilledCanceled"
REDUCE_ONLY_CANCELED = "reduceOnlyCanceled"
IOC_CANCEL_REJECTED = "iocCancelRejected"
BAD_ALO_PX_REJECTED = "badAloPxRejected"
LIVE_STATUSES = frozenset({OPEN, TRIGGERED})

# Fee rates of simulated fills: the base-tier (tier 0, no discounts) perp schedule of the
# official "Fees" page, taker 0.035 % and maker 0.01 %. A fill with `crossed: true` (IOC,
# market and trigger orders) pays the taker rate, a resting order filled by the market
# (`crossed: false`) the maker rate. Note: a live `userFees` answer measured 2026-09 shows
# userCrossRate 0.00045 / userAddRate 0.00015, i.e. the schedule was raised since; the
# simulator keeps the older numbers (exact values do not matter to a collector).
TAKER_FEE_RATE = "0.00035"
MAKER_FEE_RATE = "0.0001"

# userFills WS subscription [§1.6; SAMPLE-NOTES §5]: the ack echoes the default
# `"aggregateByTime": false`; the first frame is a snapshot with `"isSnapshot": true` (even with
# no fills), later frames carry only new fills and no isSnapshot key (verified reference).
# The snapshot holds at most this many of the newest fills (the REST userFills limit; the real
# snapshot size is unverified).
USER_FILLS_SNAPSHOT_LIMIT = USER_FILLS_LIMIT

# orderUpdates WS subscription [§1.6]: `{"type":"orderUpdates","user"}`, acked as sent (user
# lower-cased). No snapshot ("Subscribing does not give you your resting orders"): frames
# `{"channel":"orderUpdates","data":[WsOrder…]}`, each `{order: {coin, side, limitPx, sz, oid,
# timestamp, origSz, cloid}, status, statusTimestamp}`, carry every status change made since the
# previous frame of that subscription, oldest first, and NO user field. The simulator keeps this
# many of a user's newest status changes for them (a subscriber that falls further behind loses
# the oldest, as with fills).
ORDER_UPDATES_RETAINED = 10000
