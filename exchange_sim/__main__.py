"""`python -m exchange_sim`: run the simulated exchange until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from exchange_sim import rules
from exchange_sim.config import ChaosConfig, SimConfig
from exchange_sim.server import ExchangeSim


def parse_args(argv: list[str] | None = None) -> SimConfig:
    """The run's configuration from command-line flags."""
    d = SimConfig()
    p = argparse.ArgumentParser(prog="orderwatch-exchange-sim", description=__doc__)
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--traders", type=int, default=d.traders)
    p.add_argument(
        "--orders-per-trader-per-min",
        type=float,
        default=6.0,
        help="random trading rate per trader in simulated minutes (0 = none)",
    )
    p.add_argument("--speed", type=float, default=d.speed, help="simulated seconds per real second")
    p.add_argument("--push-interval", type=float, default=d.push_interval)
    p.add_argument("--change-push-delay", type=float, default=d.change_push_delay)
    p.add_argument("--max-users-per-ip", type=int, default=d.max_users_per_ip)
    p.add_argument("--max-connections-per-ip", type=int, default=d.max_connections_per_ip)
    p.add_argument("--max-new-connections-per-min", type=int, default=None)
    p.add_argument("--max-subscriptions-per-ip", type=int, default=d.max_subscriptions_per_ip)
    p.add_argument("--max-messages-per-min", type=int, default=d.max_messages_per_min)
    p.add_argument("--rest-weight-per-min", type=int, default=d.rest_weight_per_min)
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout)
    p.add_argument(
        "--max-connection-age",
        type=float,
        default=rules.MAX_CONNECTION_AGE_S,
        help="seconds before a connection is closed 1000 'Expired' (0 = never)",
    )
    p.add_argument("--ws-compress", action="store_true", help="allow permessage-deflate")
    p.add_argument("--addresses-file", type=Path, default=Path("trader_addresses.txt"))
    p.add_argument("--truth-file", type=Path, default=Path("exchange_sim_truth.jsonl"))
    p.add_argument("--visibility-file", type=Path, default=None)
    p.add_argument("--fills-file", type=Path, default=None, help="default: <truth-file>.fills.jsonl")
    p.add_argument("--start-time-ms", type=int, default=None)
    p.add_argument(
        "--chaos",
        default="",
        help="e.g. disconnect=30,expire=120,duplicate=0.01,malformed=0.01,slow=0.05:2,refuse=60:5,burst429=60:3",
    )
    p.add_argument(
        "--modify-keeps-oid",
        action="store_true",
        help="amend orders in place (same oid) instead of mainnet's cancel-and-replace",
    )
    p.add_argument("--no-hip3-dexes", action="store_true", help="do not list the HIP-3 dexes xyz and flx")
    p.add_argument("--spot-order-share", type=float, default=d.spot_order_share)
    p.add_argument("--hip3-order-share", type=float, default=d.hip3_order_share)
    p.add_argument("--book-levels", type=int, default=d.book_levels, help="l2Book background levels a side")
    p.add_argument(
        "--book-step", type=float, default=d.book_step, help="l2Book background level spacing (fraction of mark)"
    )
    p.add_argument(
        "--book-history", type=int, default=d.book_history, help="l2Book snapshots kept per coin for book_at"
    )
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    return SimConfig(
        host=a.host,
        port=a.port,
        seed=a.seed,
        traders=a.traders,
        orders_per_trader_per_min=a.orders_per_trader_per_min,
        speed=a.speed,
        push_interval=a.push_interval,
        change_push_delay=a.change_push_delay,
        max_users_per_ip=a.max_users_per_ip,
        max_connections_per_ip=a.max_connections_per_ip,
        max_new_connections_per_min=a.max_new_connections_per_min,
        max_subscriptions_per_ip=a.max_subscriptions_per_ip,
        max_messages_per_min=a.max_messages_per_min,
        rest_weight_per_min=a.rest_weight_per_min,
        idle_timeout=a.idle_timeout,
        max_connection_age=a.max_connection_age or None,
        ws_compress=a.ws_compress,
        addresses_file=a.addresses_file,
        truth_file=a.truth_file,
        visibility_file=a.visibility_file,
        fills_file=a.fills_file,
        start_time_ms=a.start_time_ms,
        chaos=ChaosConfig.parse(a.chaos),
        modify_keeps_oid=a.modify_keeps_oid,
        hip3_dexes=not a.no_hip3_dexes,
        spot_order_share=a.spot_order_share,
        hip3_order_share=a.hip3_order_share,
        book_levels=a.book_levels,
        book_step=a.book_step,
        book_history=a.book_history,
    )


async def run(config: SimConfig) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly and write the summary."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ExchangeSim(config) as sim:
        logging.getLogger("exchange_sim").info(
            "event=serving ws_url=%s info_url=%s addresses_file=%s truth_file=%s",
            sim.ws_url,
            sim.info_url,
            config.addresses_file,
            config.truth_file,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`orderwatch-exchange-sim`)."""
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
