"""Alert channels: one message per delivery unit, shaped for each receiver, POSTed over HTTP.

A delivery unit is one alert (plus the fills merged into it) or a quiet-hours digest. The words
are built once (:func:`describe`) and rendered per channel: the generic JSON webhook, Slack
incoming webhooks (``text`` + mrkdwn ``blocks``), Discord webhooks (``embeds``) and the Telegram
bot API (``sendMessage`` with ``parse_mode: HTML``). Secrets (webhook URLs, the bot token) are
only ever in the :class:`Channel` and are removed from every error text by :func:`redact`.
"""

from __future__ import annotations

import html
import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

SIDES = {"B": "buy", "A": "sell"}
MAX_ITEMS = 10
"""Alerts spelled out in one message (Discord allows 10 embeds); the rest are counted."""
TELEGRAM_MAX_CHARS = 4096
"""Telegram's limit on a message's text."""
BOOKKEEPING = (
    "_id",
    "notifiedAt",
    "deliveries",
    "decision",
    "decisionReason",
    "decidedAt",
    "mergedInto",
    "digestKey",
    "deliverAt",
    "chainOid",
)
"""The outbox fields of an ``order_alerts`` document, never part of a message."""


class DeliveryError(Exception):
    """A receiver refused a message; ``retry_after_s`` when it said how long to wait (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Line:
    """One alert in words."""

    who: str
    address: str
    url: str
    what: str
    coin: str
    side: str
    size: str
    vs_book: str | None
    reason: str
    at: datetime
    key: str


@dataclass(frozen=True)
class Message:
    """A delivery unit in words: ``title`` and its alerts (``lines``), ``key`` identifies it."""

    key: str
    title: str
    lines: list[Line]
    alerts: list[dict] = field(default_factory=list)

    def shown(self) -> tuple[list[Line], int]:
        """The lines spelled out and how many more there are."""
        return self.lines[:MAX_ITEMS], max(len(self.lines) - MAX_ITEMS, 0)


def _usd(v: float) -> str:
    return f"${v:,.0f}"


def what_happened(alert: dict) -> str:
    """placed / amended / partially filled / filled / cancelled / other final status, in words;
    for a ``near_liquidation`` alert, how close to the liquidation price the mark is; for a
    ``position`` alert, open / add / reduce / close / flip with sizes, entry, leverage and PnL."""
    if alert.get("kind") == "position":
        return (f"{alert['change']} {alert['side']}: size {alert['sziBefore']} → {alert['szi']}, entry "
                f"{alert.get('entryPx')}, {alert.get('leverage')}x, realized PnL {alert['realizedPnl']}")
    if alert.get("kind") == "near_liquidation":
        return (f"near liquidation: mark {alert['markPx']} is {alert['distancePct']:.2f} % from the liquidation "
                f"price {alert['liquidationPx']} (size {alert['szi']}, entry {alert.get('entryPx')}, "
                f"{alert.get('leverage')}x, margin {alert.get('marginUsed')})")
    action = alert.get("action")
    if action == "twap":  # orderwatch_dagster.transforms.twaps
        status = alert.get("finalStatus")
        return f"TWAP {alert['twapId']} " + ("started" if status is None else status)
    if action == "new":
        return f"amended (replaces oid {alert['replacesOid']})" if alert.get("replacesOid") is not None else "placed"
    if action == "updated":
        return "partially filled" if alert.get("partialFill") else "amended"
    status = alert.get("finalStatus") or "unknown"
    return {"filled": "filled", "canceled": "cancelled"}.get(status, f"closed ({status})")


def describe_alert(alert: dict, trader_url: str) -> Line:
    """One alert: who (address, label, link), what, coin and side, how big, why."""
    address = alert["ethAddress"]
    before, after = float(alert.get("notionalBeforeUsd") or 0.0), float(alert.get("notionalAfterUsd") or 0.0)
    change = after - before
    vs = alert.get("changeVsBook1pct")
    coin = alert["coin"] + (f" (dex {alert['dex']})" if alert.get("dex") else "")
    return Line(
        who=f"{alert['label']} ({address})" if alert.get("label") else address,
        address=address,
        url=trader_url.format(address=address),
        what=what_happened(alert) + (f" oid {alert['oid']}" if alert.get("oid") is not None else ""),
        coin=coin,
        side=SIDES.get(alert.get("side") or "", alert.get("side") or "?"),
        size=f"{_usd(before)} → {_usd(after)} ({'+' if change >= 0 else '-'}{_usd(abs(change))})",
        vs_book=f"{vs * 100:+.0f} % of the 1 % book depth" if vs is not None else None,
        reason=alert.get("reason") or "",
        at=alert["eventAt"],
        key=alert["alertKey"],
    )


def describe(key: str, alerts: list[dict], trader_url: str, digest: bool = False) -> Message:
    """The message for a delivery unit: a lead alert with its merged fills, or a digest."""
    lines = [describe_alert(a, trader_url) for a in alerts]
    if digest:
        title = f"orderwatch: {len(lines)} alert(s) held during quiet hours"
    elif len(lines) > 1:
        title = f"orderwatch: {lines[0].who} {lines[0].coin} {lines[0].side}: {len(lines)} fills merged"
    else:
        title = f"orderwatch: {lines[0].who} {lines[0].what} {lines[0].side} {lines[0].coin}"
    body = [{k: v for k, v in a.items() if k not in BOOKKEEPING} for a in alerts]
    return Message(key=key, title=title, lines=lines, alerts=body)


def _plain(line: Line) -> str:
    book = f", {line.vs_book}" if line.vs_book else ""
    return f"{line.who} {line.what}: {line.side} {line.coin}, {line.size}{book} [{line.reason}]"


# Rendering per channel --------------------------------------------------------------------------


def generic_payload(msg: Message) -> dict:
    """The generic webhook's JSON: ``text`` (the alerts' own ``message`` lines) and the alerts."""
    text = [f"orderwatch: {len(msg.alerts)} new large-change alert(s)"]
    text += [f"• {a.get('message') or a['alertKey']}" for a in msg.alerts]
    return {"text": "\n".join(text), "alerts": msg.alerts}


def _slack_escape(s: str) -> str:
    # Slack mrkdwn: only &, < and > are control characters.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(msg: Message) -> dict:
    """Slack incoming webhook: ``text`` (notifications, fallback) and one mrkdwn section per alert."""
    shown, more = msg.shown()
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": msg.title[:150]}}]
    for ln in shown:
        book = f"\n{_slack_escape(ln.vs_book)}" if ln.vs_book else ""
        text = (
            f"*<{_slack_escape(ln.url)}|{_slack_escape(ln.who)}>* {_slack_escape(ln.what)}: "
            f"*{ln.side} {_slack_escape(ln.coin)}*\n{_slack_escape(ln.size)}{book}\n_{_slack_escape(ln.reason)}_"
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if more:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]})
    return {"text": _slack_escape(msg.title), "blocks": blocks}


def discord_payload(msg: Message) -> dict:
    """Discord webhook: ``content`` plus one embed per alert (title, url, fields, timestamp)."""
    shown, more = msg.shown()
    embeds = []
    for ln in shown:
        fields = [
            {"name": "Trader", "value": ln.who[:1024], "inline": False},
            {"name": "Order", "value": f"{ln.what}: {ln.side} {ln.coin}"[:1024], "inline": False},
            {"name": "Notional", "value": ln.size, "inline": True},
        ]
        if ln.vs_book:
            fields.append({"name": "vs book", "value": ln.vs_book, "inline": True})
        fields.append({"name": "Reason", "value": ln.reason or "-", "inline": True})
        embeds.append(
            {
                "title": f"{ln.what} {ln.side} {ln.coin}"[:256],
                "url": ln.url,
                "fields": fields,
                "timestamp": ln.at.astimezone(UTC).isoformat(),
            }
        )
    content = msg.title + (f" (and {more} more)" if more else "")
    return {"content": content[:2000], "embeds": embeds}


def telegram_text(msg: Message) -> str:
    """Telegram HTML: every text escaped, links as ``<a href>``, within Telegram's length limit."""
    shown, more = msg.shown()
    parts = [f"<b>{html.escape(msg.title)}</b>"]
    for ln in shown:
        book = f"\n{html.escape(ln.vs_book)}" if ln.vs_book else ""
        parts.append(
            f'<a href="{html.escape(ln.url, quote=True)}">{html.escape(ln.who)}</a> {html.escape(ln.what)}: '
            f"<b>{ln.side} {html.escape(ln.coin)}</b>\n{html.escape(ln.size)}{book}\n<i>{html.escape(ln.reason)}</i>"
        )
    if more:
        parts.append(f"and {more} more")
    text = "\n\n".join(parts)
    while len(text) > TELEGRAM_MAX_CHARS and len(parts) > 2:  # drop whole alerts, never cut a tag
        parts.pop(-2 if more else -1)
        text = "\n\n".join([*parts, "(truncated)"])
    return text


# Sending ----------------------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and every long piece of a secret URL's path) replaced."""
    pieces: set[str] = set()
    for s in secrets:
        if not s:
            continue
        pieces.add(s)
        parts = urlsplit(s) if "://" in s else None
        if parts and parts.path:
            pieces.add(parts.path + (f"?{parts.query}" if parts.query else ""))
            pieces.update(seg for seg in parts.path.split("/") if len(seg) >= 8)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "<redacted>")
    return text


def _retry_after(err: urllib.error.HTTPError, body: bytes) -> float | None:
    """The wait a 429 asks for: Discord's ``retry_after``, Telegram's ``parameters.retry_after``,
    else the ``Retry-After`` header (seconds)."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        value = doc.get("retry_after", (doc.get("parameters") or {}).get("retry_after"))
        if isinstance(value, int | float):
            return float(value)
    header = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(header) if header else None
    except ValueError:
        return None


def post_json(url: str, payload: dict, headers: dict[str, str] | None = None, timeout_s: float = 10.0) -> int:
    """POST ``payload`` as JSON; return the status; raise :class:`DeliveryError` on a non-2xx answer
    (with the receiver's wait on a 429) and the usual ``OSError``/``ValueError`` on network or URL trouble."""
    req = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        body = err.read()
        retry = _retry_after(err, body) if err.code == 429 else None
        detail = body[:200].decode(errors="replace")
        raise DeliveryError(f"HTTP {err.code}: {detail}", retry_after_s=retry) from None


@dataclass(frozen=True)
class Channel:
    """One configured receiver: ``name`` (webhook, slack, discord, telegram) and how to reach it."""

    name: str
    url: str
    secrets: tuple[str, ...]
    chat_id: str = ""
    timeout_s: float = 10.0

    def send(self, msg: Message) -> None:
        """Render ``msg`` for this channel and POST it (raises on failure)."""
        headers: dict[str, str] = {}
        payload: dict[str, Any]
        if self.name == "webhook":
            payload, headers = generic_payload(msg), {"Idempotency-Key": msg.key}
        elif self.name == "slack":
            payload = slack_payload(msg)
        elif self.name == "discord":
            payload = discord_payload(msg)
        else:
            payload = {
                "chat_id": self.chat_id,
                "text": telegram_text(msg),
                "parse_mode": "HTML",
                "disable_web_page_preview": True,
            }
        post_json(self.url, payload, headers, self.timeout_s)

    def error_text(self, exc: BaseException) -> str:
        """A failure as stored and logged: type and message, secrets removed, at most 300 characters."""
        return redact(f"{type(exc).__name__}: {exc}", self.secrets)[:300]
