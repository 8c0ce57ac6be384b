"""Configuration of a simulator run: the exchange's rules, the market's activity and chaos."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from exchange_sim import rules


@dataclass
class ChaosConfig:
    """Faults injected on demand; every one is off by default and logged when it fires.

    Intervals are mean seconds between events (exponentially distributed, seeded);
    probabilities apply per data frame sent.
    """

    disconnect_every: float | None = None  # abort one random connection (no close frame)
    expire_every: float | None = None  # close one random connection with 1000 "Expired"
    duplicate_prob: float = 0.0  # send a data frame twice
    malformed_prob: float = 0.0  # send truncated JSON or non-JSON text before a data frame
    slow_prob: float = 0.0  # delay one connection's push by `slow_delay` seconds
    slow_delay: float = 2.0
    refuse_every: float | None = None  # refuse WS upgrades (HTTP 503) for `refuse_for` seconds
    refuse_for: float = 5.0
    burst429_every: float | None = None  # answer every /info with 429 for `burst429_for` seconds
    burst429_for: float = 3.0
    # Node-file faults (SimConfig.node_dir): a partial line held `node_partial_hold` seconds, and
    # a node restart pausing `node_restart_pause` seconds, then re-writing or skipping 1-20
    # blocks (a seeded coin flip). Durations are simulated seconds.
    node_partial_every: float | None = None
    node_partial_hold: float = 0.5
    node_restart_every: float | None = None
    node_restart_pause: float = 2.0

    @property
    def enabled(self) -> bool:
        """True if any fault is switched on."""
        return any(
            [
                self.disconnect_every,
                self.expire_every,
                self.duplicate_prob,
                self.malformed_prob,
                self.slow_prob,
                self.refuse_every,
                self.burst429_every,
                self.node_partial_every,
                self.node_restart_every,
            ]
        )

    @classmethod
    def parse(cls, spec: str) -> ChaosConfig:
        """Parse a spec such as `disconnect=30,expire=120,duplicate=0.01,malformed=0.01,
        slow=0.05:2,refuse=60:5,burst429=60:3,node_partial=20:0.5,node_restart=60:2` (intervals
        in seconds, `:N` a duration)."""
        cfg = cls()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            a, _, b = value.partition(":")
            if key == "disconnect":
                cfg.disconnect_every = float(a)
            elif key == "expire":
                cfg.expire_every = float(a)
            elif key == "duplicate":
                cfg.duplicate_prob = float(a)
            elif key == "malformed":
                cfg.malformed_prob = float(a)
            elif key == "slow":
                cfg.slow_prob = float(a)
                cfg.slow_delay = float(b) if b else cfg.slow_delay
            elif key == "refuse":
                cfg.refuse_every = float(a)
                cfg.refuse_for = float(b) if b else cfg.refuse_for
            elif key == "burst429":
                cfg.burst429_every = float(a)
                cfg.burst429_for = float(b) if b else cfg.burst429_for
            elif key == "node_partial":
                cfg.node_partial_every = float(a)
                cfg.node_partial_hold = float(b) if b else cfg.node_partial_hold
            elif key == "node_restart":
                cfg.node_restart_every = float(a)
                cfg.node_restart_pause = float(b) if b else cfg.node_restart_pause
            else:
                raise ValueError(
                    f"unknown chaos option {key!r}; use disconnect, expire, duplicate, "
                    "malformed, slow, refuse, burst429, node_partial or node_restart"
                )
        return cfg


@dataclass
class SimConfig:
    """Everything a simulator run needs; the defaults are the real exchange's rules."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port (see ExchangeSim.port)
    seed: int = 1
    leaderboard_rows: int = 30_000  # rows of the leaderboard document (simulated traders included)
    traders: int = 20
    orders_per_trader_per_min: float = 0.0  # 0 = no random trading (scripted tests)
    twaps_per_trader_per_hour: float = 0.0  # random traders' TWAPs (exchange_sim.twaps); 0 = none
    whale: bool = False  # the first trader is the scripted whale of exchange_sim.whale, not a random one
    speed: float = 1.0  # simulated seconds per real second
    tick_interval: float = 0.1  # real seconds between simulation ticks
    start_time_ms: int | None = None  # logical clock start; None = wall clock now
    push_interval: float = rules.PUSH_INTERVAL_S  # full-state re-push period
    change_push_delay: float = 0.05  # push this soon after a user's state changes
    max_users_per_ip: int = rules.MAX_USERS_PER_IP
    max_connections_per_ip: int = rules.MAX_CONNECTIONS_PER_IP
    max_new_connections_per_min: int | None = None  # real cap is 30; off by default
    max_subscriptions_per_ip: int = rules.MAX_SUBSCRIPTIONS_PER_IP
    max_messages_per_min: int = rules.MAX_MESSAGES_PER_MIN
    rest_weight_per_min: int = rules.REST_WEIGHT_PER_MIN
    idle_timeout: float = rules.IDLE_TIMEOUT_S
    max_connection_age: float | None = None  # real exchange: ~3 h (rules.MAX_CONNECTION_AGE_S)
    ws_compress: bool = False  # permessage-deflate costs ~1 ms per 100 KB frame
    addresses_file: Path | None = None
    truth_file: Path | None = None
    visibility_file: Path | None = None  # default: <truth_file>.visibility.jsonl
    fills_file: Path | None = None  # every fill as ground truth; default: <truth_file>.fills.jsonl
    chaos: ChaosConfig = field(default_factory=ChaosConfig)
    # A modify is a cancel-and-replace on mainnet (new oid, same cloid, old oid "canceled").
    # True restores an in-place amend (same oid) to check a collector still records that.
    modify_keeps_oid: bool = False
    hip3_dexes: bool = True  # list the invented HIP-3 dexes "xyz" and "flx" (see market.py)
    spot_order_share: float = 0.10  # share of random placements on spot pairs
    hip3_order_share: float = 0.15  # share of random placements on HIP-3 coins (if any dex)
    # l2Book background liquidity (exchange_sim.book): `book_levels` levels a side at
    # mark x (1 -/+ k x book_step), each worth a seeded randint(*book_level_usd) USD at the mark;
    # `book_history` served snapshots kept per coin for ExchangeSim.book_at.
    book_levels: int = 20
    book_step: float = 0.0015
    book_level_usd: tuple[int, int] = (1_000, 20_000)
    book_history: int = 2000
    # Ground truth and the addresses file cover only the first `tracked_traders` traders (None:
    # all); the others trade as well (node files, info API), which keeps the truth of a run
    # with thousands of active traders small.
    tracked_traders: int | None = None
    # Non-validating-node output files (exchange_sim.node_files): written under `node_dir`
    # (None: not written) in layout "hourly", "by-block" or "both", for every trader.
    node_dir: Path | None = None
    node_layout: str = "by-block"
    node_blocks_per_s: float = 14.0
    node_write_lag_ms: int = 30  # local_time - block_time of a promptly written block
    node_faults_file: Path | None = None  # default: <truth_file>.node_faults.jsonl

    def visibility_path(self) -> Path | None:
        """Where visibility records go, if ground truth is recorded at all."""
        if self.visibility_file is not None:
            return Path(self.visibility_file)
        if self.truth_file is not None:
            return Path(str(self.truth_file) + ".visibility.jsonl")
        return None

    def fills_path(self) -> Path | None:
        """Where the fill ground truth goes (see exchange_sim.truth), if recorded at all."""
        if self.fills_file is not None:
            return Path(self.fills_file)
        if self.truth_file is not None:
            return fills_path_for(self.truth_file)
        return None

    def node_faults_path(self) -> Path | None:
        """Where injected node-file faults are recorded, if node files and a file are configured."""
        if self.node_dir is None:
            return None
        if self.node_faults_file is not None:
            return Path(self.node_faults_file)
        if self.truth_file is not None:
            return Path(str(self.truth_file) + ".node_faults.jsonl")
        return None


def fills_path_for(truth_file: str | Path) -> Path:
    """The default fill ground-truth file next to a truth file: `<truth_file>.fills.jsonl`."""
    return Path(str(truth_file) + ".fills.jsonl")


def marks_path_for(truth_file: str | Path) -> Path:
    """The mark ground-truth file next to a truth file: `<truth_file>.marks.jsonl`."""
    return Path(str(truth_file) + ".marks.jsonl")
