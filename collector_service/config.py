"""The collector's settings, from environment variables and ``.env`` (pydantic-settings).

Every setting is an environment variable of the same name in upper case. Invalid values fail
at start-up with a message that names the variable, never later in the middle of a run.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collector_service import exchange, schema
from collector_service.sources.node_files import find_streams

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
FEEDS = ("openOrders", "webData2")
DEX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class ConfigError(ValueError):
    """Configuration is invalid; the message names the environment variable(s) at fault."""


def parse_address(raw: str, where: str) -> str:
    """Validate one trader address (0x + 40 hex digits) and return it lower-cased."""
    text = raw.strip()
    if not ADDRESS_RE.match(text):
        raise ValueError(f"{where}: {text!r} is not a trader address (0x followed by 40 hex digits)")
    return text.lower()


@dataclass(frozen=True)
class Trader:
    """One line of the watch list: an address, and optionally a label and tags for cohorts."""

    address: str
    label: str | None = None
    tags: tuple[str, ...] = ()
    origin: str = "manual"
    """``manual`` (the file, TRADER_ADDRESSES), ``pin`` or ``selection`` (Dagster's, in trader_watchlist)."""


def parse_watch_line(line: str, where: str) -> Trader | None:
    """``0xADDRESS  optional label  [optional, tags]  # comment``; None for a blank line."""
    entry = line.split("#", 1)[0].strip()
    if not entry:
        return None
    address, _, rest = entry.partition(" ")
    rest = rest.strip()
    tags: tuple[str, ...] = ()
    if rest.endswith("]") and "[" in rest:
        rest, _, inside = rest[:-1].rpartition("[")
        tags = tuple(dict.fromkeys(t.strip() for t in inside.split(",") if t.strip()))
        rest = rest.strip()
    return Trader(parse_address(address, where), rest or None, tags)


def read_addresses_file(path: Path) -> list[Trader]:
    """Read a watch list: one trader per line (address, then an optional label and ``[tags]``),
    blank lines and ``#`` comments ignored; the first line of an address wins."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    found: dict[str, Trader] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        trader = parse_watch_line(line, f"{path}:{lineno}")
        if trader is not None:
            found.setdefault(trader.address, trader)
    return list(found.values())


def mask_uri(uri: str) -> str:
    """Hide the password (and any ``password=`` option) in a MongoDB URI."""
    masked = re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", uri)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", masked)


class Settings(BaseSettings):
    """Every knob of the collector. Defaults run against mainnet and a local MongoDB."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    trader_ws_enabled: bool = Field(True, description="Collect from the WebSocket feeds at all.")
    trader_ws_clients: int = Field(
        5,
        ge=1,
        le=exchange.MAX_CONNECTIONS_PER_IP,
        description="WebSocket connections per egress address (users are spread over them).",
    )
    trader_ws_message_buffer_size: int = Field(
        1000, ge=1, description="Flush early when this many events wait to be written."
    )
    trader_orders_ws_enabled: bool = Field(True, description="Record order events (false: positions only).")
    trader_orders_ws_flush_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between batch writes to MongoDB (bounds the latency from a change to its document).",
    )
    mongo_uri: str = Field(
        "mongodb://127.0.0.1:27017",
        description="MongoDB connection string (a real MongoDB, or the embedded nx-27017 the demo starts).",
    )
    mongo_db: str = Field("orderwatch", min_length=1, description="MongoDB database name.")
    hyperliquid_ws_url: str = Field(
        "wss://api.hyperliquid.xyz/ws", description="WebSocket endpoint (the demo points it at the local simulator)."
    )
    hyperliquid_info_url: str = Field(
        "https://api.hyperliquid.xyz/info", description="Hyperliquid info (REST) endpoint."
    )
    trader_addresses: str = Field(
        "", description="Comma-separated trader addresses (`0x` + 40 hex digits; lower-cased and de-duplicated)."
    )
    trader_addresses_file: Path | None = Field(
        None,
        description=(
            "The watch list: one trader per line, `0xADDRESS  optional label  [optional, tags]`, `#` starts a "
            "comment. Combined with `TRADER_ADDRESSES`. Re-read when it changes: traders added are followed "
            "within seconds (their history fetched first), traders removed are let go; a trader added back goes "
            "on from its stored open orders (the journal is written out first, then its state loaded as at a "
            "start) and what it did while not followed is recovered from its newest stored event, labels and tags"
            " go to `trader_watchlist`; a file that does not parse is reported and the list in force stays."
        ),
    )
    trader_ws_feed: Literal["openOrders", "webData2"] = Field(
        "openOrders",
        description=(
            "`openOrders`: the live protocol, per-user `openOrders` + `clearinghouseState` subscriptions. "
            "`webData2`: the legacy single feed (deprecated by the exchange; kept for old recordings and "
            "stand-ins)."
        ),
    )
    trader_ws_max_users_per_ip: int = Field(
        exchange.MAX_USERS_PER_IP,
        ge=1,
        le=1000,
        description=(
            "Unique traders per egress address (the exchange's per-IP cap). Traders beyond the total capacity are"
            " named at start-up and counted in `/healthz`."
        ),
    )
    trader_ws_source_addresses: str = Field(
        "",
        description=(
            "Comma-separated local IP addresses to connect from; each is a separate egress with its own caps and "
            "REST budget."
        ),
    )
    trader_ws_ping_interval: float = Field(
        exchange.PING_INTERVAL_S, gt=0, description=('Seconds between `{"method":"ping"}` keep-alives.')
    )
    trader_ws_pong_timeout: float = Field(
        exchange.PONG_DEADLINE_S,
        gt=0,
        description="Reconnect when neither pong nor data arrives this many seconds after a ping.",
    )
    trader_fills_enabled: bool = Field(
        True,
        description=(
            "Record fills in `trader_fills`: the `userFills` feed for live traders (no extra user slot), "
            "`userFillsByTime` after gaps and restarts and in polled traders' sweeps."
        ),
    )
    trader_order_updates_enabled: bool = Field(
        True,
        description=(
            "Subscribe `orderUpdates` for live traders (one more subscription of a user already followed: no "
            "user slot) and take closed orders' final statuses from it instead of `orderStatus` / "
            "`historicalOrders` calls. Its frames name no user: an update is matched by oid to the live trader "
            "whose order it is. `false`: every outcome is asked for over REST."
        ),
    )
    trader_twaps_enabled: bool = Field(
        True, description="Record TWAP orders (twapStates feed for live traders, twapHistory with every REST recovery)."
    )
    trader_books_enabled: bool = Field(
        True,
        description=(
            "Stamp each `new`/`updated` order event with its coin's order book (`bookMidPx`, `distanceBps`, "
            "`depthAheadUsd`, `levelShare`, `bookDepth1pctUsd`, `bookAt`): the public `l2Book` of every coin "
            "where a followed order rests is subscribed (no user slot; one subscription per coin, released "
            "60 to 70 s after the last such order closed: 60 s idle, checked every 10 s). A book is used only "
            "while it was received at most 60 s ago on a connection still up; else the fields are null."
        ),
    )
    trader_marks_enabled: bool = Field(
        True, description="Keep market_marks fresh from the public activeAssetCtx feed of every coin a followed "
        "trader holds a position in (one more WebSocket connection, no user slot)."
    )
    trader_ws_pinned: str = Field(
        "", description="Comma-separated traders that always keep a live WebSocket slot (never polled)."
    )
    trader_watch_interval: float = Field(
        2.0,
        gt=0,
        le=3600,
        description=(
            "Seconds between checks of `TRADER_ADDRESSES_FILE` (and, with `TRADER_WATCHLIST_SELECTION`, of the "
            "selection in MongoDB) for changes."
        ),
    )
    trader_watchlist_selection: bool = Field(
        False,
        description=(
            "`true`: also follow the pins and the selection Dagster writes into `trader_watchlist` (origin `pin` "
            "or `selection`, see How the selection reaches the collector), read every `TRADER_WATCH_INTERVAL`; "
            "the collector then starts with no manual list too. A failed read is reported (log, `/healthz` "
            "`watchlist_selection.read_ok`) and the list in force stays."
        ),
    )
    trader_poll_enabled: bool = Field(
        True,
        description=(
            "Follow the traders beyond the live capacity by polling the info API (`false`: they are named as over"
            " capacity and not followed)."
        ),
    )
    trader_poll_budget_share: float = Field(
        schema.POLL_BUDGET_SHARE,
        gt=0,
        lt=1,
        description=(
            "Share of each egress address's REST weight per minute kept for polling; the rest serves outcomes, "
            "gap recovery and sweeps."
        ),
    )
    trader_poll_min_interval: float = Field(
        schema.POLL_MIN_INTERVAL_S,
        gt=0,
        le=3600,
        description="Never poll one trader more often than every this many seconds.",
    )
    trader_max_poll_period: float | None = Field(
        None,
        gt=0,
        description=(
            "Freshness wanted, in seconds: `/healthz` `coverage.fresh` is `false` (and "
            "`orderwatch_coverage_fresh` 0, a warning logged) while the list in force makes the expected poll "
            "period longer (see Freshness to expect)."
        ),
    )
    trader_poll_sweep_interval: float = Field(
        600.0,
        ge=5,
        le=86400,
        description=(
            "Sweep each polled trader's `historicalOrders` at least this often, recording the orders that opened "
            "and closed between two polls."
        ),
    )
    trader_dexes: str = Field(
        "all",
        description=(
            "Perp dexes followed besides the main dex (which also carries spot orders): `all` = every dex the "
            "info API's `perpDexs` lists, re-checked every `TRADER_DEX_REFRESH_INTERVAL` so a new HIP-3 dex is "
            "followed without a restart; `none` = main dex and spot only; or comma-separated HIP-3 dex names "
            "(`xyz,flx`). Each dex is one `openOrders` + one `clearinghouseState` subscription per trader; the "
            "exchange counts a trader once however many dexes it follows. Orders and fills of other dexes, which "
            "`historicalOrders`, `userFills` and `userFillsByTime` list too, are not recorded (the `userFills` "
            "feed, gap recovery, sweeps, `backfill`)."
        ),
    )
    trader_dex_refresh_interval: float = Field(
        300.0, ge=5, le=86400, description="Seconds between perpDexs checks for new dexes (TRADER_DEXES=all)."
    )
    trader_shard_index: int = Field(0, ge=0, description="This instance's shard (0-based).")
    trader_shard_count: int = Field(
        1,
        ge=1,
        description="How many instances share the trader list: each tracks the traders whose address modulo "
        "the count equals its `TRADER_SHARD_INDEX`.",
    )
    collector_rest_weight_per_minute: int = Field(
        exchange.REST_WEIGHT_PER_MINUTE,
        ge=20,
        description="REST weight budget per egress address (the exchange's limit).",
    )
    collector_data_dir: Path = Field(
        Path("data/collector"),
        description="Where the on-disk journal of not-yet-written operations lives (`journal-shard<N>/`).",
    )
    collector_journal_fsync_interval: float = Field(
        1.0,
        ge=0,
        le=3600,
        description=(
            "Seconds an append to the journal may wait for `fsync` (on the disk itself: survives a power loss); "
            "`0` fsyncs every append before it counts as made (~3.4 ms each here: at most ~290 changed snapshots "
            "a second). See Reliability."
        ),
    )
    node_data_dir: Path | None = Field(
        None,
        description=(
            "A Hyperliquid non-validating node's data folder (e.g. `~/hl/data`, holding "
            "`node_order_statuses_by_block/` and `node_fills_by_block/`). When set, every tracked trader's order "
            "events and fills come from the node's files instead of the WebSocket feeds and polling (no per-IP "
            "cap: any number of traders); see Running a node for orderwatch. A folder that does not exist or "
            "holds neither stream stops the collector with a message saying so."
        ),
    )
    node_start: Literal["now", "earliest"] = Field(
        "now",
        description=(
            "Where to begin when no checkpoint is stored: `now` = the current end of the node's files (the "
            "tracked traders' open orders are then resynced and their history recovered, as after a reconnect); "
            "`earliest` = the oldest line still on disk. Ignored once `node_checkpoints` holds a position."
        ),
    )
    node_layout: Literal["by_block", "hourly"] = Field(
        "by_block",
        description=(
            "Which layout to read when the node writes a stream both ways: `by_block` (`--batch-by-block`, one "
            "block per line: block gaps are detected) or `hourly` (one event per line)."
        ),
    )
    node_info_url: str | None = Field(
        None,
        description=(
            "The node's own info server (`--serve-info`, `http://127.0.0.1:3001/info`): used to resync open "
            "orders after a block gap and for positions after fills, with no public rate limit. Unset: the public"
            " info API within `COLLECTOR_REST_WEIGHT_PER_MINUTE`."
        ),
    )
    collector_health_host: str = Field("127.0.0.1", description="Bind address of `/healthz` and `/metrics`.")
    collector_health_port: int = Field(
        9108, ge=0, le=65535, description="Health/metrics port (0 disables the endpoint)."
    )
    collector_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="`DEBUG`, `INFO`, `WARNING` or `ERROR`."
    )

    @field_validator("collector_log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("hyperliquid_ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("hyperliquid_info_url")
    @classmethod
    def _info_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("node_info_url")
    @classmethod
    def _node_info_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (the node's --serve-info endpoint)")
        return value or None

    @field_validator("node_data_dir")
    @classmethod
    def _node_data_dir(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.is_dir():
            raise ValueError(f"{value} is not a folder (the node's data folder, e.g. ~/hl/data)")
        if not find_streams(value):
            raise ValueError(
                f"{value} holds no node_order_statuses[_by_block]/hourly or node_fills[_by_block]/hourly folder; "
                "run the node with --write-order-statuses --write-fills --batch-by-block"
            )
        return value

    @field_validator("mongo_uri")
    @classmethod
    def _mongo_uri(cls, value: str) -> str:
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("trader_addresses", "trader_ws_pinned")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                parse_address(item, "address")
        return value

    @field_validator("trader_dexes")
    @classmethod
    def _dexes(cls, value: str) -> str:
        if value.strip().lower() in ("all", "none"):
            return value.strip().lower()
        for item in value.split(","):
            if not DEX_RE.match(item.strip()):
                raise ValueError(f"{item.strip()!r} is not a dex name; use all, none or names such as xyz,flx")
        return value

    @field_validator("trader_ws_source_addresses")
    @classmethod
    def _sources(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_address(item.strip())
                except ValueError as exc:
                    raise ValueError(f"{item.strip()!r} is not an IP address") from exc
        return value

    @model_validator(mode="after")
    def _shard(self) -> Settings:
        if self.trader_shard_index >= self.trader_shard_count:
            raise ValueError(
                f"TRADER_SHARD_INDEX ({self.trader_shard_index}) must be below "
                f"TRADER_SHARD_COUNT ({self.trader_shard_count})"
            )
        return self

    def watchlist(self) -> list[Trader]:
        """Every configured trader, validated, lower-cased and de-duplicated in order, with the
        labels and tags of the file (ConfigError naming TRADER_ADDRESSES_FILE if it is bad)."""
        found = {t.address: t for t in (Trader(parse_address(a, "TRADER_ADDRESSES"))
                                        for a in self.trader_addresses.split(",") if a.strip())}
        if self.trader_addresses_file is not None:
            try:
                listed = read_addresses_file(self.trader_addresses_file)
            except ValueError as exc:
                raise ConfigError(f"TRADER_ADDRESSES_FILE: {exc}") from exc
            for trader in listed:
                if found.get(trader.address, Trader(trader.address)) == Trader(trader.address):
                    found[trader.address] = trader
        return list(found.values())

    def all_traders(self) -> list[str]:
        """Every configured trader's address, in order."""
        return [t.address for t in self.watchlist()]

    def pinned_traders(self) -> list[str]:
        """Traders that always keep a live slot (lower-cased, in order)."""
        return list(dict.fromkeys(a.strip().lower() for a in self.trader_ws_pinned.split(",") if a.strip()))

    def fixed_dexes(self) -> list[str] | None:
        """The HIP-3 dexes to follow besides the main dex; None: every dex the exchange lists."""
        if self.trader_dexes == "all":
            return None
        if self.trader_dexes == "none":
            return []
        return list(dict.fromkeys(d.strip() for d in self.trader_dexes.split(",")))

    def source_addresses(self) -> list[str | None]:
        """Local addresses to connect from; ``[None]`` means the system's default route."""
        found = [a.strip() for a in self.trader_ws_source_addresses.split(",") if a.strip()]
        return list(dict.fromkeys(found)) or [None]

    def describe(self) -> dict[str, object]:
        """The resolved settings by environment variable name, with secrets masked."""
        shown: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "mongo_uri":
                value = mask_uri(value)
            shown[name.upper()] = str(value) if isinstance(value, Path) else value
        return shown


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from the environment, turning validation errors into
    :class:`ConfigError` messages that name each bad variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(part) for part in err["loc"]).upper() or "configuration"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if not message.startswith(name) else message)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    settings.all_traders()  # file problems surface now, named
    return settings
