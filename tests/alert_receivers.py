"""One loopback HTTP server posing as Slack, Discord, Telegram and a generic webhook, for the
alert delivery tests (unit and end to end)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

from orderwatch_dagster.resources import AlertChannels

SLACK_PATH = "/slack/services/T000/B000/slacksecret0123456789"
DISCORD_PATH = "/discord/api/webhooks/42/discordsecret0123456789"
TOKEN = "123456:telegramsecret0123456789"
WEBHOOK_PATH = "/hook/webhooksecret0123456789"
SECRETS = ("slacksecret0123456789", "discordsecret0123456789", "telegramsecret0123456789", "webhooksecret0123456789")


class Request(NamedTuple):
    """One POST a receiver accepted."""

    channel: str
    headers: dict[str, str]
    body: dict
    at: float
    """Arrival (``time.time()``)."""


class FakeReceivers:
    """One loopback HTTP server answering as Slack, Discord, Telegram and a generic webhook (by
    path), recording every request; ``answers[channel]`` = (status, body) makes one misbehave;
    ``on_post(channel)``, when set, runs after a request is recorded and before it is answered."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: dict[str, tuple[int, dict]] = {}
        self.on_post: Callable[[str], None] | None = None
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = rec.channel_of(self.path)
                status, answer = rec.answers.get(name, (200, {}))
                if status < 300:
                    rec.requests.append(Request(name, dict(self.headers), body, time.time()))
                if rec.on_post is not None:
                    rec.on_post(name)
                if name == "telegram" and status < 300:
                    answer = {"ok": True, "result": {"message_id": len(rec.requests)}}
                data = json.dumps(answer).encode()
                self.send_response(204 if name == "discord" and status < 300 else status)
                if data != b"{}" and not (name == "discord" and status < 300):
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def channel_of(path: str) -> str:
        for name, prefix in (("slack", "/slack/"), ("discord", "/discord/"), ("telegram", "/telegram/")):
            if path.startswith(prefix):
                return name
        return "webhook"

    def resource(self, timeout_s: float = 10.0) -> AlertChannels:
        return AlertChannels(
            timeout_s=timeout_s,
            webhook_url=self.base + WEBHOOK_PATH,
            slack_webhook_url=self.base + SLACK_PATH,
            discord_webhook_url=self.base + DISCORD_PATH,
            telegram_bot_token=TOKEN,
            telegram_chat_id="-100777",
            telegram_api_url=self.base + "/telegram",
        )

    def got(self, name: str) -> list[dict]:
        return [r.body for r in self.requests if r.channel == name]

    def messages(self, name: str = "webhook") -> list[list[str]]:
        """Per generic-webhook message, its alerts' keys."""
        return [[a["alertKey"] for a in body["alerts"]] for body in self.got(name)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
