"""Where order state comes from: three sources side by side, feeding one pipeline.

- ``websocket`` (the live tier): per trader and dex ``openOrders`` / ``clearinghouseState`` (or
  the legacy ``webData2``) and ``userFills`` over connections per egress address, plus the
  ``l2Book`` of the coins where followed orders rest.
- ``polling`` (the polled tier): traders beyond the per-IP cap, refreshed over the info API
  within the REST budget; ``tiers`` moves the busiest traders to the live slots.
- ``node`` (``NODE_DATA_DIR``): a non-validating node's order statuses and fills, tailed from its
  files (``node_files``) with per-stream checkpoints; replaces the other two when set.

Each source hands decoded snapshots or transitions to :class:`collector_service.pipeline.Pipeline`;
the pure diff and event logic they share is in :mod:`collector_service.events`.
"""
