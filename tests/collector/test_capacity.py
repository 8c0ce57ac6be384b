"""Capacity: traders spread over several loopback egress addresses under the exchange's per-IP
user cap, users beyond capacity named, and the exchange's own capacity errors handled once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from exchange_sim import ExchangeSim, SimConfig
from tests.collector.harness import RunningCollector, collector_settings, eventually, settled
from tests.mongo_server import free_port


@pytest.mark.parametrize("feed", ["openOrders", "webData2"])
async def test_twenty_traders_over_two_egress_addresses(feed: str, tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    truth = tmp_path / "truth.jsonl"
    config = SimConfig(traders=20, push_interval=0.5, orders_per_trader_per_min=120, speed=1.0, truth_file=truth)
    async with ExchangeSim(config) as sim:
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", sim.addresses,
                                      trader_ws_feed=feed, trader_ws_source_addresses="127.0.0.1,127.0.0.2",
                                      trader_ws_clients=3)
        async with RunningCollector(settings) as run:
            await eventually(lambda: sim.ip_stats("127.0.0.1")["users"] == 10
                             and sim.ip_stats("127.0.0.2")["users"] == 10, what="10 users on each egress")
            # the first egress also carries the mark-price connection once a trader holds a position
            # (no user slot: still 10 users there)
            assert sim.ip_stats("127.0.0.2")["connections"] == 3
            assert sim.ip_stats("127.0.0.1")["connections"] in (3, 4)
            await asyncio.sleep(4)
            sim.set_order_rate(0)
            report = await settled(mongo_db, sim, truth, run)
            assert run.service.plan.over_capacity == ()
            assert not run.service.stats.exchange_errors
    assert report.observable > 40, report.summary()
    assert report.ok and report.capture_rate == 1.0, report.summary()


async def test_traders_beyond_capacity_are_named_and_counted(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    health_port = free_port()
    async with ExchangeSim(SimConfig(traders=13, push_interval=0.3)) as sim:
        # with polling off, traders beyond the live capacity are not followed, and said so
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", sim.addresses,
                                      collector_health_port=health_port, trader_poll_enabled=False)
        async with RunningCollector(settings) as run:
            assert run.service.plan.over_capacity == tuple(sim.addresses[10:])
            await eventually(lambda: sim.ip_stats("127.0.0.1")["users"] == 10, what="10 users subscribed")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{health_port}/healthz") as response:
                    health = await response.json()
                async with http.get(f"http://127.0.0.1:{health_port}/metrics") as response:
                    metrics = await response.text()
            assert health["traders_over_capacity"] == 3 and health["over_capacity"] == sim.addresses[10:]
            assert health["tracked_traders"] == 10
            assert "orderwatch_traders_over_capacity 3.0" in metrics
            assert "orderwatch_frames_total" in metrics


async def test_exchange_capacity_error_reported_once_without_retry_loop(
    tmp_path: Path, mongo_uri: str, mongo_db, caplog: pytest.LogCaptureFixture
) -> None:
    # the exchange allows fewer users than the collector was told: its error must stop the
    # collector from hammering it, and name who is left out
    async with ExchangeSim(SimConfig(traders=6, push_interval=0.3, max_users_per_ip=4)) as sim:
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", sim.addresses,
                                      trader_ws_clients=1)
        async with RunningCollector(settings) as run:
            await eventually(lambda: run.service.refused_users(), what="refused users")
            received = sim.stats.messages_received
            await asyncio.sleep(2)
            assert sim.stats.messages_received - received <= 1  # at most a keep-alive ping
            assert sorted(run.service.refused_users()) == sorted(sim.addresses[4:])
            assert sim.ip_stats("127.0.0.1")["users"] == 4
    refusals = [r for r in caplog.records if "event=capacity_refused" in r.getMessage()]
    assert len(refusals) == 1 and "Cannot track more than 4 total users." in refusals[0].getMessage()
    assert json.dumps(sim.addresses[5])[1:-1] in refusals[0].getMessage()


async def test_healthz_and_metrics_show_the_coverage_of_the_list_in_force(tmp_path: Path, mongo_uri: str,
                                                                         mongo_db) -> None:
    """12 traders on one address: 10 live, 2 polled, refreshed every 2 x 20.5 / 720 x 60 = 3.4 s, slower
    than the 3 s wanted; the list shrinks to 10 while running and the coverage is fresh again."""
    health_port = free_port()
    listing = tmp_path / "traders.txt"
    async with ExchangeSim(SimConfig(traders=12, push_interval=0.3)) as sim:
        listing.write_text("\n".join(sim.addresses) + "\n")
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "c", [], trader_addresses="",
                                      trader_addresses_file=listing, trader_watch_interval=0.2,
                                      collector_health_port=health_port, trader_max_poll_period=3.0)

        async def read() -> tuple[dict, str]:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{health_port}/healthz") as response:
                    health = await response.json()
                async with http.get(f"http://127.0.0.1:{health_port}/metrics") as response:
                    return health, await response.text()

        async with RunningCollector(settings) as run:
            await eventually(lambda: sim.ip_stats("127.0.0.1")["users"] == 10, what="10 users subscribed")
            health, metrics = await read()
            assert health["coverage"] == {"traders": 12, "live": 10, "polled": 2, "polled_per_address": 2,
                                          "expected_period_s": 3.4, "not_followed": 0, "max_poll_period_s": 3.0,
                                          "fresh": False}
            for line in ("orderwatch_coverage_live 10.0", "orderwatch_coverage_polled_per_address 2.0",
                         "orderwatch_coverage_expected_poll_period_seconds 3.41", "orderwatch_coverage_fresh 0.0",
                         "orderwatch_coverage_max_poll_period_seconds 3.0"):
                assert line in metrics, line

            listing.write_text("\n".join(sim.addresses[:10]) + "\n")
            await eventually(lambda: len(run.service.users) == 10, what="the shorter list in force")
            health, metrics = await read()
            assert health["coverage"] == {"traders": 10, "live": 10, "polled": 0, "polled_per_address": 0,
                                          "expected_period_s": None, "not_followed": 0, "max_poll_period_s": 3.0,
                                          "fresh": True}
            assert "orderwatch_coverage_fresh 1.0" in metrics
            assert "\norderwatch_coverage_expected_poll_period_seconds " not in metrics  # nobody polled: no period
