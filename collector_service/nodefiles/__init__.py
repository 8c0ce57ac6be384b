"""The node-file source: order statuses and fills tailed from a Hyperliquid non-validating node.

``files`` finds the node's hourly files and reads whole lines by byte offset; ``lines`` finds
the tracked traders' events in them without decoding the rest of the exchange; ``transitions``
turns a trader's status transitions and fills into the same order events the snapshot diff
makes; ``source`` runs it all, checkpoints each stream in MongoDB and repairs gaps.
"""
