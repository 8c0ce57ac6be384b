"""TWAPs in the simulator: slices as zero-hash taker fills with twapId and no status line,
twapStates over WS and in webData2, twapHistory, and the TWAP ground truth."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import aiohttp

from exchange_sim import ExchangeSim, SimConfig
from exchange_sim.exchange import ZERO_HASH
from exchange_sim.twaps import SLICE_INTERVAL_MS, load_twaps, twaps_path_for
from tests.exchange_sim.conftest import START_MS, connect, recv_channel, sub
from tests.exchange_sim.test_fills import post

U = "0x" + "ef" * 20


async def test_slices_fill_with_twap_id_and_zero_hash_and_no_status_line(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.3, start_time_ms=START_MS, truth_file=truth)) as sim:
        twap_id = sim.start_twap(U, "BTC", "B", "0.1", 5)
        sim.tick(SLICE_INTERVAL_MS * 3)  # three slices due
        twap = sim.twap(twap_id)
        fills = sim.exchange.user_fills(U)
        assert len(fills) == 3 and twap.slices_done == 3 and twap.status == "activated"
        assert all(f["twapId"] == twap_id and f["hash"] == ZERO_HASH and f["crossed"] for f in fills)
        assert sim.exchange.historical_orders(U) == []  # no order-status line, no history entry
        assert sum(Decimal(f["sz"]) for f in fills) == twap.executed_sz
        async with aiohttp.ClientSession() as session:
            [activated] = await post(session, sim, {"type": "twapHistory", "user": U})
            assert activated["twapId"] == twap_id and activated["status"] == {"status": "activated"}
            assert activated["state"]["sz"] == "0.1" and activated["state"]["minutes"] == 5
            wd2 = await post(session, sim, {"type": "webData2", "user": U})
            assert [s[0] for s in wd2["twapStates"]] == [twap_id]
        sim.tick(SLICE_INTERVAL_MS * 7)  # the 10th and last slice: finished
        assert twap.status == "finished" and twap.executed_sz == Decimal("0.1")
        assert sim.twaps.states(U) == []
        second = sim.start_twap(U, "ETH", "A", "1", 30)
        sim.tick(SLICE_INTERVAL_MS + 1_000)  # its first slice (the clock's stamps may run ahead a few ms)
        sim.terminate_twap(second)
    lines = load_twaps(twaps_path_for(truth))
    assert lines[(U, twap_id)]["status"] == "finished"
    assert lines[(U, twap_id)]["state"]["executedSz"] == "0.1"
    assert lines[(U, second)]["status"] == "terminated"
    assert Decimal(lines[(U, second)]["state"]["executedSz"]) > 0


async def test_twap_states_subscription_pushes_running_twaps(sim: ExchangeSim) -> None:
    async with connect(sim) as ws:
        await ws.send(sub("twapStates", U))
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["subscription"] == {"type": "twapStates", "user": U}
        first = await recv_channel(ws, "twapStates")
        assert first["data"] == {"dex": "", "user": U, "states": []}
        twap_id = sim.start_twap(U, "ETH", "A", "2", 10)
        frame = await recv_channel(ws, "twapStates")
        [[got_id, state]] = frame["data"]["states"]
        assert got_id == twap_id and state["side"] == "A" and state["executedSz"] == "0.0"
        sim.terminate_twap(twap_id)
        while frame["data"]["states"]:
            frame = await recv_channel(ws, "twapStates")


def test_random_traders_run_twaps_to_finished_and_terminated() -> None:
    sim = ExchangeSim(SimConfig(traders=4, start_time_ms=START_MS, twaps_per_trader_per_hour=30))
    for _ in range(360):  # one simulated hour
        sim.tick(10_000)
    statuses = [t.status for t in sim.twaps.by_id.values()]
    assert len(statuses) > 20 and {"finished", "terminated"} <= set(statuses)
    for twap in sim.twaps.by_id.values():
        fills = [f for f in sim.exchange.user_fills(twap.user) if f["twapId"] == twap.twap_id]
        assert sum((Decimal(f["sz"]) for f in fills), Decimal(0)) == twap.executed_sz
        if twap.status == "finished":
            assert twap.executed_sz == twap.sz
