"""The node-file source's tracked lines turned into operations: a block's statuses applied
together, fills, and the lines a trader's resync held back, applied once its snapshot is in.

A block's transitions are applied together for a modify to be linked (without a cloid its
``canceled`` and ``open`` are paired only within one batch); in the hourly layout they are spread
over lines, one event each, so the statuses of one block are those with the same ``time``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from collector_service.events.node_lines import NodeFill, NodeStatus
from collector_service.events.node_transitions import Placed, Transitions
from collector_service.pipeline import Pipeline
from collector_service.sources.node_files import Kind
from collector_service.store import Op, fill_ops, order_ops

Waiting = tuple[Kind, Any, Placed]
"""A line held back for a resyncing trader: its stream, its decoded event (a status, or a fill as
``(user, fill, raw)``) and where it was read."""


def same_block(a: tuple[NodeStatus, Placed], b: tuple[NodeStatus, Placed]) -> bool:
    """Whether two statuses read one after the other come from one block: the same block number
    in the by-block layout; in the hourly layout (no block number) the same ``time``, which a
    node writes as the block's time on every event of the block."""
    if a[1].block is not None or b[1].block is not None:
        return a[1].block == b[1].block
    return a[0].time == b[0].time


class LineOps:
    """Applies the tracked traders' statuses and fills to their books, and notes the traders
    whose positions a fill changed."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.transitions = Transitions(pipeline.book)
        self.positions_wanted: dict[tuple[str, str], None] = {}  # (trader, dex) with a fill since the last refresh

    def statuses(self, held: list[tuple[NodeStatus, Placed]], observed_at: datetime) -> list[Op]:
        """Apply the held statuses of one block together (and forget them): their operations."""
        if not held:
            return []
        events = self.transitions.statuses(held, observed_at)
        held.clear()
        self.pipeline.noted(events, observed_at)
        return order_ops(events)

    def fill(
        self,
        user: str,
        fill: NodeFill,
        raw: msgspec.Raw,
        where: Placed,
        observed_at: datetime,
        in_snapshot: bool = False,
    ) -> list[Op]:
        """The operations of a fill (``in_snapshot``: a snapshot applied after it included it)."""
        doc, event = self.transitions.fill(user, fill, raw, where, observed_at, to_book=not in_snapshot)
        self.positions_wanted[(user, doc["dex"])] = None
        ops = fill_ops([doc]) if self.pipeline.record_fills else []
        if event is not None:
            self.pipeline.noted([event], observed_at)
            ops += order_ops([event])
        return ops

    def waited(
        self,
        waiting: list[Waiting],
        observed_at: datetime,
        *,
        statuses_only: bool = False,
        in_snapshot: bool = False,
    ) -> list[Op]:
        """Apply lines a trader's resync held back: its statuses (block by block, as read: a
        modify's pair is linked within its block, never across blocks), then, unless
        ``statuses_only``, its fills (``in_snapshot``: stored only, the snapshot's sizes include
        them)."""
        ops: list[Op] = []
        block: list[tuple[NodeStatus, Placed]] = []
        for kind, item, where in waiting:
            if kind == "order_statuses":
                if block and not same_block(block[-1], (item, where)):
                    ops += self.statuses(block, observed_at)
                block.append((item, where))
        ops += self.statuses(block, observed_at)
        if not statuses_only:
            for kind, item, where in waiting:
                if kind == "fills":
                    trader, fill, raw = item
                    ops += self.fill(trader, fill, raw, where, observed_at, in_snapshot=in_snapshot)
        return ops
