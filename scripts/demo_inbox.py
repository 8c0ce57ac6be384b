"""The demo's alert inbox: loopback receivers standing in for every alert channel, and a page of
what each received.

One HTTP server (a thread of the demo, loopback only) answers as the generic webhook
(``/webhook``), a Slack incoming webhook (``/slack``), a Discord webhook (``/discord``) and the
Telegram Bot API (``/telegram/bot<token>/sendMessage``): :func:`channel_env` points Dagster's
alert channels (``orderwatch_dagster.channels``) at it. Every message is appended as it came to
``<data>/inbox/<channel>.jsonl``; ``GET /`` is the page: per alert kind (from the generic
webhook's alerts) how many came and when the first did, then each channel's newest messages as
it would show them.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHANNELS = ("webhook", "slack", "discord", "telegram")
KINDS = {"large_change": "large change", "position": "position", "near_liquidation": "near liquidation",
         "twap": "large TWAP"}
"""Alert kinds as the page names them (``twap``: the ``twaps`` asset's large-TWAP alerts)."""
SHOWN = 30
"""Newest messages shown per channel."""
TELEGRAM_TOKEN = "demo-token"
TELEGRAM_CHAT_ID = "demo-inbox"


def channel_env(base_url: str) -> dict[str, str]:
    """The environment that sends Dagster's alerts on every channel to the inbox at ``base_url``."""
    return {
        "ORDERWATCH_ALERT_WEBHOOK_URL": f"{base_url}/webhook",
        "ORDERWATCH_SLACK_WEBHOOK_URL": f"{base_url}/slack",
        "ORDERWATCH_DISCORD_WEBHOOK_URL": f"{base_url}/discord",
        "ORDERWATCH_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "ORDERWATCH_TELEGRAM_CHAT_ID": TELEGRAM_CHAT_ID,
        "ORDERWATCH_TELEGRAM_API_URL": f"{base_url}/telegram",
    }


def kind_of(alert: dict[str, Any]) -> str:
    """An alert's kind: ``position``, ``near_liquidation``, ``twap`` or ``large_change``."""
    if alert.get("kind"):
        return str(alert["kind"])
    return "twap" if alert.get("action") == "twap" else "large_change"


def text_of(channel: str, body: dict[str, Any]) -> str:
    """A message's words as its channel shows them (Telegram's HTML as plain text)."""
    if channel == "slack":
        sections = [b["text"]["text"] for b in body.get("blocks", []) if b.get("type") == "section"]
        return "\n".join([str(body.get("text", "")), *sections])
    if channel == "discord":
        return "\n".join([str(body.get("content", "")), *(str(e.get("title", "")) for e in body.get("embeds", []))])
    text = str(body.get("text", ""))
    return html.unescape(re.sub(r"<[^>]+>", "", text)) if channel == "telegram" else text


@dataclass(frozen=True)
class Received:
    at: datetime
    text: str


class Inbox:
    """What each channel received since ``started``; each message also appended to ``folder``."""

    def __init__(self, folder: Path, started: datetime) -> None:
        self.folder = folder
        self.started = started
        self.lock = threading.Lock()
        self.newest: dict[str, deque[Received]] = {c: deque(maxlen=SHOWN) for c in CHANNELS}
        self.counts: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.first: dict[str, datetime] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def receive(self, channel: str, body: dict[str, Any]) -> None:
        """Record one message (the generic webhook's alerts are counted by kind)."""
        now = datetime.now(UTC)
        with self.lock:
            with (self.folder / f"{channel}.jsonl").open("a") as out:
                out.write(json.dumps({"receivedAt": now.isoformat(), "body": body}) + "\n")
            self.newest[channel].append(Received(now, text_of(channel, body)))
            self.counts[channel] += 1
            if channel == "webhook":
                for alert in body.get("alerts", []):
                    kind = kind_of(alert)
                    self.kinds[kind] += 1
                    self.first.setdefault(kind, now)

    def page(self) -> str:
        """The inbox page (refreshes itself every 10 s)."""
        with self.lock:
            rows = []
            for kind, name in KINDS.items():
                first = self.first.get(kind)
                after = f"{(first - self.started).total_seconds():.0f}" if first else ""
                rows.append(f'<tr data-kind="{kind}" data-count="{self.kinds[kind]}" data-first-s="{after}">'
                            f"<td>{name}</td><td>{self.kinds[kind]}</td>"
                            f"<td>{f'{after} s after the demo started' if first else 'none yet'}</td></tr>")
            sections = []
            for channel in CHANNELS:
                items = "".join(f"<li><time>{m.at:%H:%M:%S}</time><pre>{html.escape(m.text)}</pre></li>"
                                for m in reversed(self.newest[channel]))
                sections.append(f'<section data-channel="{channel}" data-count="{self.counts[channel]}">'
                                f"<h2>{channel}: {self.counts[channel]} message(s)</h2>"
                                f"<ol>{items or '<li>nothing yet</li>'}</ol></section>")
        return (
            '<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">'
            "<title>orderwatch demo: alert inbox</title><style>body{font-family:sans-serif;margin:2em}"
            "td,th{padding:.2em 1em;text-align:left}pre{white-space:pre-wrap;margin:.2em 0 .8em}</style></head><body>"
            f"<h1>orderwatch demo: alert inbox</h1><p>What each alert channel received since "
            f"{self.started:%Y-%m-%d %H:%M:%S} UTC (newest first; all of it in {html.escape(str(self.folder))}).</p>"
            "<table><tr><th>alert kind</th><th>alerts</th><th>first</th></tr>" + "".join(rows) + "</table>"
            + "".join(sections) + "</body></html>"
        )


def _channel_of(path: str) -> str | None:
    first = path.strip("/").split("/", 1)[0]
    return first if first in CHANNELS else None


class LogToFile(BaseHTTPRequestHandler):
    """A request handler writing its access log to ``log``, not to the console."""

    log: Path

    def log_message(self, format: str, *args: object) -> None:
        with self.log.open("a") as out:
            out.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")


class _InboxHandler(LogToFile):
    inbox: Inbox

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        channel = _channel_of(self.path)
        if channel is None:
            self._answer(404, b'{"error": "no such channel; post to /webhook, /slack, /discord or /telegram"}')
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._answer(400, b'{"error": "the body is not a JSON object"}')
            return
        self.inbox.receive(channel, body)
        self._answer(200, b'{"ok": true, "result": {}}')

    def do_GET(self) -> None:
        if self.path not in ("/", "/index.html"):
            self._answer(404, b"not found", "text/plain")
            return
        self._answer(200, self.inbox.page().encode(), "text/html; charset=utf-8")


def inbox_server(host: str, port: int, inbox: Inbox, log: Path) -> ThreadingHTTPServer:
    """The inbox's receivers and page on ``host:port`` (start it with :func:`serving`)."""
    return ThreadingHTTPServer((host, port), type("InboxHandler", (_InboxHandler,), {"inbox": inbox, "log": log}))


@contextmanager
def serving(server: ThreadingHTTPServer, name: str) -> Iterator[ThreadingHTTPServer]:
    """Serve from a thread of this process named ``name`` while the block runs."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
