"""A local Hyperliquid stand-in: WS feeds and info API with the exchange's caps, plus ground truth.

Optionally it also writes a non-validating node's output files (order statuses and fills, hourly
or by block, with injectable faults) for every trader: see exchange_sim.node_files.

Independent of collector_service by design (it must not import it), so that it catches
protocol misunderstandings the collector would share with its own test doubles.
"""

from exchange_sim.config import ChaosConfig, SimConfig
from exchange_sim.feeds import SimStats
from exchange_sim.fill_truth import FillReport, compare_fills
from exchange_sim.server import ExchangeSim
from exchange_sim.truth import Report, compare, compare_events

__all__ = [
    "ChaosConfig",
    "ExchangeSim",
    "FillReport",
    "Report",
    "SimConfig",
    "SimStats",
    "compare",
    "compare_events",
    "compare_fills",
]
