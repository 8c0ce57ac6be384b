"""The orderUpdates WS subscription: no snapshot, every status change once, no user field."""

from __future__ import annotations

from typing import Any

from exchange_sim import ExchangeSim
from tests.exchange_sim.conftest import connect, recv_channel, recv_json, sub


async def _updates_until(ws: Any, count: int) -> list[list[dict[str, Any]]]:
    """The data of orderUpdates frames received until they hold ``count`` elements."""
    frames: list[list[dict[str, Any]]] = []
    while sum(len(f) for f in frames) < count:
        frames.append((await recv_channel(ws, "orderUpdates"))["data"])
    return frames


async def test_order_updates_stream_every_status_change_without_user_or_snapshot(sim: ExchangeSim) -> None:
    a, b = sim.addresses[0], sim.addresses[1]
    resting = sim.place(a, "BTC", "B", "0.02", "100000.0")  # before the subscribe: never sent as a snapshot
    async with connect(sim) as ws:
        await ws.send(sub("orderUpdates", a.upper().replace("0X", "0x")))
        assert await recv_json(ws) == {"channel": "subscriptionResponse", "data": {
            "method": "subscribe", "subscription": {"type": "orderUpdates", "user": a}}}
        await ws.send(sub("orderUpdates", b))  # a second user on the same socket
        await recv_channel(ws, "subscriptionResponse")

        placed = sim.place(b, "ETH", "A", "1.0", "2600.0", cloid="0x" + "ab" * 16)
        sim.fill(placed, "0.4")
        sim.fill(placed)
        sim.cancel(resting)
        frames = await _updates_until(ws, 4)
        updates = [u for frame in frames for u in frame]
        assert all(isinstance(frame, list) for frame in frames)  # data is the list itself: no user anywhere
        # each user's changes in order (the two users' frames come in either order)
        mine = [u for u in updates if u["order"]["oid"] == placed]
        assert [u["status"] for u in mine] == ["open", "open", "filled"]
        (canceled,) = [u for u in updates if u not in mine]
        assert (canceled["order"]["oid"], canceled["status"]) == (resting, "canceled")
        assert canceled["statusTimestamp"] == sim.order(resting).status_ts
        first = mine[0]
        assert list(first) == ["order", "status", "statusTimestamp"]
        assert list(first["order"]) == ["coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz", "cloid"]
        assert (first["order"]["coin"], first["order"]["sz"], first["order"]["origSz"]) == ("ETH", "1.0", "1.0")
        assert mine[1]["order"]["sz"] == "0.6"  # the partial fill: still open, size down
        assert mine[2]["statusTimestamp"] == sim.order(placed).status_ts

        # every change once: the next frame holds only what happened after the last one
        later = sim.place(a, "SOL", "B", "2.0", "140.0")
        (frame,) = await _updates_until(ws, 1)
        assert [(u["order"]["oid"], u["status"]) for u in frame] == [(later, "open")]
