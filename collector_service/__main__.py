"""Command line: ``python -m collector_service {run,check-config,backfill}``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from collector_service.config import ConfigError, Settings, load_settings
from collector_service.logs import setup_logging

log = logging.getLogger("collector_service")


async def _run(settings: Settings) -> int:
    from collector_service.service import Service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await Service(settings).run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="orderwatch-collector",
        description="Capture Hyperliquid traders' orders and positions into MongoDB.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the collector until SIGINT/SIGTERM")
    sub.add_parser("check-config", help="print the resolved settings (secrets masked) and validate them")
    sub.add_parser("backfill", help="store historical orders fetched over REST for the configured traders")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
        traders = settings.all_traders()
    except ConfigError as exc:
        print(f"orderwatch-collector: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.collector_log_level)

    if args.command == "check-config":
        shown = settings.describe()
        shown["traders"] = len(traders)
        print(json.dumps(shown, indent=2, default=str))
        return 0
    if not traders and not (settings.trader_watchlist_selection and args.command != "backfill"):
        print("orderwatch-collector: no traders configured: set TRADER_ADDRESSES, TRADER_ADDRESSES_FILE or "
              "TRADER_WATCHLIST_SELECTION=true",
              file=sys.stderr)
        return 2
    if args.command == "backfill":
        from collector_service.backfill import run_backfill

        return 1 if asyncio.run(run_backfill(settings)) else 0
    return asyncio.run(_run(settings))


if __name__ == "__main__":
    sys.exit(main())
