"""Outcomes of closed orders from the simulator's info API, one by one or in a batch."""

from __future__ import annotations

import asyncio

from collector_service.metrics import Stats
from collector_service.outcomes import BATCH_MIN, OutcomeResolver
from collector_service.rest import InfoClient
from exchange_sim import ExchangeSim, SimConfig
from tests.collector.harness import eventually


async def _resolve(sim: ExchangeSim, closes: list[tuple[str, int]]) -> tuple[dict[int, str], Stats]:
    stats = Stats()
    client = InfoClient(sim.info_url, None, 1200, stats)
    found: dict[int, str] = {}
    resolver = OutcomeResolver(client, lambda ops: found.update({op["doc"]["oid"]: op["doc"]["finalStatus"]
                                                                 for op in ops}))
    for user, oid in closes:
        resolver.want(user, oid)
    task = asyncio.create_task(resolver.run())
    try:
        await eventually(lambda: len(found) == len(closes) and not len(resolver), timeout=20, what="outcomes")
    finally:
        task.cancel()
        await client.close()
    return found, stats


async def test_few_closes_use_order_status_many_use_one_history_call() -> None:
    async with ExchangeSim(SimConfig(traders=2)) as sim:
        alice, bob = sim.addresses
        few = [sim.place(alice, "BTC", "B", "0.1", "50000") for _ in range(3)]
        many = [sim.place(bob, "ETH", "A", "1", "3000") for _ in range(BATCH_MIN + 5)]
        for oid in few:
            sim.cancel(oid)
        for i, oid in enumerate(many):
            sim.fill(oid) if i % 2 else sim.cancel(oid, "marginCanceled")

        found, stats = await _resolve(sim, [(alice, oid) for oid in few])
        assert found == {oid: "canceled" for oid in few}
        assert stats.rest_calls == {"orderStatus": 3}

        found, stats = await _resolve(sim, [(bob, oid) for oid in many])
        assert found == {oid: "filled" if i % 2 else "marginCanceled" for i, oid in enumerate(many)}
        assert stats.rest_calls == {"historicalOrders": 1}
