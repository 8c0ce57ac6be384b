"""The pure logic between what the exchange sends and the documents stored: no I/O.

- ``wire``: decoding WebSocket frames and info API bodies into typed records;
  ``node_lines``: finding and decoding the tracked traders' events in a node's lines.
- ``tracker``: per (trader, dex) order books that diff full snapshots into ``new`` /
  ``updated:<seq>`` / ``closed`` events and link modifies (cancel-and-replace);
  ``node_transitions``: the same events from a node's status transitions and fills.
- ``positions``: position books diffing ``clearinghouseState``; ``fills``: one document per fill.
- ``books``: the order-book context stamped on events; ``activity``: each trader's decayed
  events per hour (which traders get the live slots).

The pipeline and the sources both build on these modules; none of them imports either.
"""
