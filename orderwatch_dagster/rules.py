"""Alert rules: what is an alert and which alerts reach people, read from one TOML file.

``alert_rules.toml`` at the repository root (``ORDERWATCH_ALERT_RULES`` overrides the path) holds
the thresholds of :func:`transforms.alerts.large_change_alerts` (the daily asset and the fast sensor read
the same file) and the noise-control rules applied before delivery. :func:`decide` is the pure
delivery decision for one alert; the outbox (:mod:`orderwatch_dagster.outbox`) feeds it the alerts
of the same trader decided before.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orderwatch_dagster.transforms.alerts import AlertThresholds

RULES_ENV = "ORDERWATCH_ALERT_RULES"
DEFAULT_RULES_PATH = Path(__file__).resolve().parents[1] / "alert_rules.toml"
"""The committed, documented rules file at the repository root."""
DEFAULT_TRADER_URL = "https://app.hyperliquid.xyz/explorer/address/{address}"

SEND, MERGED, SUPPRESSED, HELD = "send", "merged", "suppressed", "held"
"""The delivery decisions recorded on an ``order_alerts`` document (``decision``)."""
DELIVERED_DECISIONS = (SEND, HELD)
"""Decisions whose alert reaches people on its own or in a quiet-hours digest (cooldown counts them)."""

ADDRESS_RE = re.compile(r"^0x[0-9a-f]{40}$")


M = TypeVar("M", bound=BaseModel)


class RulesError(ValueError):
    """The rules file is missing, not TOML, or holds a bad value; the message names file and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(Strict):
    """``[thresholds]``: when an event is an alert (:class:`AlertThresholds`)."""

    threshold_usd: float = Field(default=AlertThresholds.threshold_usd, gt=0)
    min_change_share: float = Field(default=AlertThresholds.min_change_share, ge=0)
    min_change_usd: float = Field(default=AlertThresholds.min_change_usd, ge=0)
    min_change_vs_book_1pct: float | None = Field(default=None, gt=0)
    twap_threshold_usd: float = Field(default=250_000.0, gt=0)
    """A TWAP whose planned notional (size x average price) reaches this alerts at its start and its end."""

    def params(self) -> AlertThresholds:
        return AlertThresholds(
            self.threshold_usd, self.min_change_share, self.min_change_usd, self.min_change_vs_book_1pct
        )


class Override(Strict):
    """``[traders."0x..."]`` / ``[coins.BTC]``: any of the delivery defaults, plus ``mute``, and
    the ``near_liquidation`` rule's ``near_liquidation_pct`` / ``near_liquidation_cooldown_s``."""

    min_usd: float | None = Field(default=None, ge=0)
    cooldown_s: float | None = Field(default=None, ge=0)
    mute: bool = False
    near_liquidation_pct: float | None = Field(default=None, gt=0, le=100)
    near_liquidation_cooldown_s: float | None = Field(default=None, ge=0)


class NearLiquidation(Strict):
    """``[near_liquidation]``: a position whose mark is within ``threshold_pct`` % of its
    liquidation price is an alert, at most one per ``cooldown_s`` per (trader, coin)
    (orderwatch_dagster.liquidation)."""

    threshold_pct: float = Field(default=10.0, gt=0, le=100)
    cooldown_s: float = Field(default=3600.0, ge=0)


class Delivery(Strict):
    """``[delivery]``: the defaults every alert is judged by before it is sent."""

    min_usd: float = Field(default=0.0, ge=0)
    """Floor on the order's size: max(notionalBeforeUsd, notionalAfterUsd)."""
    cooldown_s: float = Field(default=0.0, ge=0)
    """Per (trader, coin): an alert within this many seconds of one sent is suppressed."""
    merge_window_s: float = Field(default=0.0, ge=0)
    """Fill alerts of one amend chain within this many seconds of the first go out as one message."""
    trader_url: str = DEFAULT_TRADER_URL
    """The trader page linked from messages; ``{address}`` is replaced by the 0x address."""

    @field_validator("trader_url")
    @classmethod
    def _has_address(cls, v: str) -> str:
        if "{address}" not in v:
            raise ValueError("must contain {address}")
        return v


class QuietHours(Strict):
    """``[quiet_hours]``: alerts decided between ``start`` and ``end`` (local ``timezone``) are held
    and delivered as one digest per channel when the period ends."""

    start: time
    end: time
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: the period would be empty")
        return self

    def release_at(self, now: datetime) -> datetime | None:
        """The end (UTC) of the quiet period ``now`` falls in, or None outside quiet hours."""
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside, end_day = self.start <= t < self.end, local.date()
        else:  # across midnight, e.g. 23:00 -> 07:00
            inside = t >= self.start or t < self.end
            end_day = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not inside:
            return None
        return datetime.combine(end_day, self.end, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Policy:
    """The delivery rules for one (trader, coin), overrides applied; ``source`` says which for messages."""

    min_usd: float
    cooldown_s: float
    mute: bool
    source: dict[str, str]


class AlertRules(Strict):
    """The whole rules file."""

    thresholds: Thresholds = Thresholds()
    delivery: Delivery = Delivery()
    quiet_hours: QuietHours | None = None
    near_liquidation: NearLiquidation = NearLiquidation()
    traders: dict[str, Override] = {}
    coins: dict[str, Override] = {}

    @field_validator("traders")
    @classmethod
    def _addresses(cls, v: dict[str, Override]) -> dict[str, Override]:
        bad = [a for a in v if not ADDRESS_RE.match(a.lower())]
        if bad:
            raise ValueError(f"not a 0x address of 40 hex digits: {', '.join(bad)}")
        return {a.lower(): o for a, o in v.items()}

    def _layers(self, address: str, coin: str) -> list[tuple[str, Override | None]]:
        return [(f"trader {address}", self.traders.get(address.lower())), (f"coin {coin}", self.coins.get(coin))]

    def _layered(self, address: str, coin: str, field: str, default: float) -> tuple[float, str]:
        """The trader's override of ``field``, else the coin's, else ``default``; and which it was."""
        for name, override in self._layers(address, coin):
            value = getattr(override, field) if override else None
            if value is not None:
                return value, name
        return default, "default"

    def policy(self, address: str, coin: str) -> Policy:
        """Per field: the trader's override, else the coin's, else ``[delivery]``; muted by either."""
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        for field in ("min_usd", "cooldown_s"):
            values[field], name = self._layered(address, coin, field, getattr(self.delivery, field))
            source[field] = "delivery" if name == "default" else name
        muted_by = [name for name, override in self._layers(address, coin) if override and override.mute]
        if muted_by:
            source["mute"] = muted_by[0]
        return Policy(values["min_usd"], values["cooldown_s"], bool(muted_by), source)

    def near_liquidation_policy(self, address: str, coin: str) -> tuple[float, float]:
        """(threshold %, cooldown s) of the ``near_liquidation`` rule for this trader and coin."""
        rule = self.near_liquidation
        return (self._layered(address, coin, "near_liquidation_pct", rule.threshold_pct)[0],
                self._layered(address, coin, "near_liquidation_cooldown_s", rule.cooldown_s)[0])


def load_toml(model: type[M], default_path: Path, env: str, what: str, path: str | Path | None = None) -> M:
    """``model`` validated from ``path``, else ``$env``, else ``default_path``.

    A missing default file means the model's defaults; a missing file that was asked for, a file
    that is not TOML or a bad value raises :class:`RulesError` naming the file, key and problem.
    """
    explicit = path if path is not None else os.environ.get(env) or None
    target = Path(explicit) if explicit else default_path
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise RulesError(f"{target}: {what} file not found (set by {env} or the caller)") from None
        return model()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{target}: not valid TOML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise RulesError(f"{target}: {problems}") from None


def load_rules(path: str | Path | None = None) -> AlertRules:
    """The alert rules from ``path``, else ``$ORDERWATCH_ALERT_RULES``, else the committed default
    file (see :func:`load_toml`)."""
    return load_toml(AlertRules, DEFAULT_RULES_PATH, RULES_ENV, "alert rules", path)


# The delivery decision -------------------------------------------------------------------------


def is_fill(alert: dict) -> bool:
    """An alert caused by a fill: a partial fill (``updated``, ``partialFill``) or a filled close."""
    if alert.get("action") == "updated":
        return bool(alert.get("partialFill"))
    return alert.get("action") == "closed" and alert.get("finalStatus") == "filled"


def size_usd(alert: dict) -> float:
    """What the floor compares: the order's larger notional, before or after the event."""
    return max(float(alert.get("notionalBeforeUsd") or 0.0), float(alert.get("notionalAfterUsd") or 0.0))


def decide(alert: dict, rules: AlertRules, earlier: list[dict], now: datetime) -> dict[str, Any]:
    """The fields recording ``alert``'s delivery decision, in this order of rules:

    1. muted (trader or coin) -> suppressed; 2. below the floor -> suppressed;
    3. a fill of an amend chain (``chainOid``) whose first fill alert is still waiting to be sent
       and at most ``merge_window_s`` older -> merged into it;
    4. within ``cooldown_s`` of an alert of the same (trader, coin) that reaches people -> suppressed;
    5. during quiet hours -> held for the period's digest;
    6. else sent, a fill only after its merge window (``deliverAt``) so that later fills can join.

    ``earlier``: the decided alerts of the same trader close in time (any coin).
    """
    address, coin, at = alert["ethAddress"], alert["coin"], alert["eventAt"]
    policy = rules.policy(address, coin)
    if policy.mute:
        return {"decision": SUPPRESSED, "decisionReason": f"muted ({policy.source['mute']})"}
    size = size_usd(alert)
    if size < policy.min_usd:
        return {
            "decision": SUPPRESSED,
            "decisionReason": f"floor: {size:,.0f} USD < min_usd {policy.min_usd:,.0f} ({policy.source['min_usd']})",
        }
    window = timedelta(seconds=rules.delivery.merge_window_s)
    fill = is_fill(alert)
    if fill and window:
        for lead in earlier:
            if (
                lead.get("decision") == SEND
                and is_fill(lead)
                and lead.get("chainOid") == alert.get("chainOid")
                and not lead.get("deliveries")
                and timedelta(0) <= at - lead["eventAt"] <= window
            ):
                return {
                    "decision": MERGED,
                    "mergedInto": lead["alertKey"],
                    "decisionReason": f"fill within {rules.delivery.merge_window_s:g} s of {lead['alertKey']}",
                }
    cooldown = timedelta(seconds=policy.cooldown_s)
    for other in earlier:
        if (
            cooldown
            and other["coin"] == coin
            and other.get("decision") in DELIVERED_DECISIONS
            and abs(at - other["eventAt"]) < cooldown
        ):
            return {
                "decision": SUPPRESSED,
                "decisionReason": (
                    f"cooldown: {other['alertKey']} {abs(at - other['eventAt']).total_seconds():.0f} s apart "
                    f"< {policy.cooldown_s:g} s ({policy.source['cooldown_s']})"
                ),
            }
    release = rules.quiet_hours.release_at(now) if rules.quiet_hours else None
    if release is not None:
        return {
            "decision": HELD,
            "digestKey": f"quiet:{release.isoformat()}",
            "deliverAt": release,
            "decisionReason": f"quiet hours until {release.isoformat()}",
        }
    return {
        "decision": SEND,
        "deliverAt": max(now, at + window) if fill else now,
        "decisionReason": "sent",
    }


def lookback(rules: AlertRules) -> timedelta:
    """How far back :func:`decide` looks for ``earlier`` alerts: the longest cooldown or merge window."""
    longest = max(
        [rules.delivery.cooldown_s, rules.delivery.merge_window_s]
        + [o.cooldown_s or 0.0 for o in (*rules.traders.values(), *rules.coins.values())]
    )
    return timedelta(seconds=longest)
