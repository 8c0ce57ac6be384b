"""`python -m exchange_sim`: run the simulated exchange until SIGINT/SIGTERM.

With `--node-dir DIR` it also writes a non-validating node's order-status and fill files for
every trader (`--node-layout hourly|by-block|both`, see exchange_sim.node_files);
`--start-before-hour 20` starts the clock 20 s before a whole hour so the files rotate soon, and
`--tracked-traders 200 --traders 2000` keeps the addresses file and ground truth to 200 of them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from pathlib import Path

from exchange_sim import rules
from exchange_sim.clock import before_next_hour
from exchange_sim.config import ChaosConfig, SimConfig
from exchange_sim.node_files import LAYOUTS
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
    p.add_argument(
        "--twaps-per-trader-per-hour",
        type=float,
        default=d.twaps_per_trader_per_hour,
        help="random TWAPs started per trader per simulated hour (0 = none)",
    )
    p.add_argument(
        "--whale",
        action="store_true",
        help="the first trader is a scripted whale crossing every alert threshold (exchange_sim.whale)",
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
        "--start-before-hour",
        type=float,
        default=None,
        metavar="SECONDS",
        help="start the clock this many seconds before the next whole UTC hour (a node-file rotation)",
    )
    p.add_argument(
        "--tracked-traders",
        type=int,
        default=None,
        help="only the first N traders go to the addresses file and the ground truth (default: all)",
    )
    p.add_argument("--node-dir", type=Path, default=None, help="write non-validating-node output files here")
    p.add_argument("--node-layout", choices=LAYOUTS, default=d.node_layout)
    p.add_argument("--node-blocks-per-s", type=float, default=d.node_blocks_per_s)
    p.add_argument("--node-faults-file", type=Path, default=None, help="default: <truth-file>.node_faults.jsonl")
    p.add_argument(
        "--chaos",
        default="",
        help="e.g. disconnect=30,expire=120,duplicate=0.01,malformed=0.01,slow=0.05:2,refuse=60:5,burst429=60:3,"
        "node_partial=20:0.5,node_restart=60:2",
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
    if a.start_before_hour is not None and a.start_time_ms is not None:
        p.error("give --start-time-ms or --start-before-hour, not both")
    start_ms = a.start_time_ms
    if a.start_before_hour is not None:
        start_ms = before_next_hour(int(time.time() * 1000), a.start_before_hour)
    return SimConfig(
        host=a.host,
        port=a.port,
        seed=a.seed,
        traders=a.traders,
        orders_per_trader_per_min=a.orders_per_trader_per_min,
        twaps_per_trader_per_hour=a.twaps_per_trader_per_hour,
        whale=a.whale,
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
        start_time_ms=start_ms,
        chaos=ChaosConfig.parse(a.chaos),
        modify_keeps_oid=a.modify_keeps_oid,
        hip3_dexes=not a.no_hip3_dexes,
        spot_order_share=a.spot_order_share,
        hip3_order_share=a.hip3_order_share,
        book_levels=a.book_levels,
        book_step=a.book_step,
        book_history=a.book_history,
        tracked_traders=a.tracked_traders,
        node_dir=a.node_dir,
        node_layout=a.node_layout,
        node_blocks_per_s=a.node_blocks_per_s,
        node_faults_file=a.node_faults_file,
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
