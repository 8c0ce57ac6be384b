"""The demo's alert inbox (scripts/demo_inbox.py) and the whale that fills it.

The inbox takes what the four alert channels of ``orderwatch_dagster.channels`` post and lists it;
and end to end, the same pieces as ``make demo`` without the web UI: the simulator with its whale
(``--whale``), the collector following it, ``dagster-daemon`` running ``fast_alert_sensor`` at the
demo's interval with its channels pointed at the inbox: within 3 minutes of the start the inbox
page shows a large-change, a position and a near-liquidation alert, on every channel."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchange_sim import ExchangeSim, SimConfig
from orderwatch_dagster import channels
from orderwatch_dagster.resources import AlertChannels
from scripts import demo
from scripts.demo_inbox import CHANNELS, Inbox, channel_env, inbox_server, serving
from tests.collector.harness import RunningCollector, collector_settings, eventually
from tests.e2e.test_alerts_e2e import daemon_for
from tests.mongo_server import free_port

WITHIN_S = 180.0
"""The demo's promise: every kind of alert within 3 minutes of its start."""
KINDS = ("large_change", "position", "near_liquidation")
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def page(url: str) -> str:
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        return str(response.read().decode())


def first_alerts(url: str) -> dict[str, float]:
    """Per alert kind on the inbox page at ``url``, when the first came (seconds after the inbox started)."""
    rows = re.findall(r'<tr data-kind="(\w+)" data-count="(\d+)" data-first-s="([\d.]*)">', page(url))
    return {kind: float(first) for kind, count, first in rows if int(count) > 0}


def channel_counts(url: str) -> dict[str, int]:
    """Per channel on the inbox page at ``url``, how many messages it received."""
    return {c: int(n) for c, n in re.findall(r'<section data-channel="(\w+)" data-count="(\d+)">', page(url))}


class RunningInbox:
    """The inbox on a free loopback port, as the demo serves it."""

    def __init__(self, folder: Path) -> None:
        self.inbox = Inbox(folder, datetime.now(UTC))
        self.url = f"http://127.0.0.1:{free_port()}"



@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[RunningInbox]:
    running = RunningInbox(tmp_path / "inbox")
    port = int(running.url.rsplit(":", 1)[1])
    with serving(inbox_server("127.0.0.1", port, running.inbox, tmp_path / "inbox.log"), "inbox"):
        yield running


def resource(url: str) -> AlertChannels:
    """The alert channels as Dagster configures them from the demo's environment."""
    env = channel_env(url)
    return AlertChannels(
        webhook_url=env["ORDERWATCH_ALERT_WEBHOOK_URL"],
        slack_webhook_url=env["ORDERWATCH_SLACK_WEBHOOK_URL"],
        discord_webhook_url=env["ORDERWATCH_DISCORD_WEBHOOK_URL"],
        telegram_bot_token=env["ORDERWATCH_TELEGRAM_BOT_TOKEN"],
        telegram_chat_id=env["ORDERWATCH_TELEGRAM_CHAT_ID"],
        telegram_api_url=env["ORDERWATCH_TELEGRAM_API_URL"],
    )


def test_the_inbox_lists_what_each_channel_received_and_refuses_bad_posts(inbox: RunningInbox) -> None:
    base = {"ethAddress": "0x" + "ab" * 20, "coin": "BTC", "side": "B", "eventAt": T0}
    alerts = [
        base | {"alertKey": "k1", "action": "new", "oid": 7, "notionalAfterUsd": 1.5e6},
        base | {"alertKey": "k2", "kind": "position", "change": "open", "side": "long", "sziBefore": "0.0",
                "szi": "13.9", "entryPx": "107786.0", "leverage": 5, "realizedPnl": "0"},
        base | {"alertKey": "k3", "kind": "near_liquidation", "side": "long", "markPx": "96000.0",
                "distancePct": 4.98, "liquidationPx": "91218.0", "szi": "23.2", "entryPx": "107790.0"},
    ]
    for alert in alerts:  # as the rules word them (position_alerts, liquidation, the large-change rule)
        alert["message"] = f"{alert['ethAddress']} BTC: {channels.what_happened(alert)}"
    configured = resource(inbox.url).channels()
    assert [c.name for c in configured] == list(CHANNELS)
    for alert in alerts:
        for channel in configured:
            channel.send(channels.describe(alert["alertKey"], [alert], "https://example.invalid/{address}"))
    assert set(first_alerts(inbox.url)) == set(KINDS)
    assert channel_counts(inbox.url) == dict.fromkeys(CHANNELS, 3)
    text = page(inbox.url)
    sections = re.findall(r'<section data-channel="\w+".*?</section>', text, re.S)
    assert len(sections) == 4 and all("near liquidation: mark 96000.0" in s and "open long" in s for s in sections)
    assert "&lt;b&gt;" not in text and "<b>" not in text  # Telegram's HTML shown as text
    assert len((inbox.inbox.folder / "telegram.jsonl").read_text().splitlines()) == 3

    for path, body, status in (("/webhook", b"not json", 400), ("/webhook", b"[1]", 400), ("/elsewhere", b"{}", 404)):
        request = urllib.request.Request(inbox.url + path, data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == status and b"error" in refused.value.read()
    assert channel_counts(inbox.url) == dict.fromkeys(CHANNELS, 3)  # nothing recorded, the server still answers


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_the_whale_fills_the_inbox_with_every_alert_kind_within_three_minutes(
    tmp_path: Path, mongo_uri: str, mongo_db, inbox: RunningInbox
) -> None:
    daemon = daemon_for(tmp_path, mongo_uri, mongo_db.name, {
        "ORDERWATCH_FAST_ALERT_INTERVAL_S": str(demo.FAST_ALERT_INTERVAL_S), **channel_env(inbox.url)})
    started = time.monotonic()
    async with ExchangeSim(SimConfig(traders=3, whale=True, orders_per_trader_per_min=demo.ORDERS_PER_TRADER_PER_MIN,
                                     push_interval=2)) as sim:
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "collector", sim.addresses)
        async with RunningCollector(settings):
            daemon.start()
            try:
                await eventually(lambda: set(first_alerts(inbox.url)) >= set(KINDS), timeout=WITHIN_S + 120,
                                 what="a large-change, a position and a near-liquidation alert in the inbox")
            finally:
                daemon.kill()
    first = first_alerts(inbox.url)
    print(f"first alert of each kind, s after the inbox started: {first}; "
          f"test start to inbox {time.monotonic() - started:.0f} s")
    assert all(first[kind] <= WITHIN_S for kind in KINDS), first
    whale = sim.addresses[0]
    assert mongo_db.order_alerts.find_one({"kind": "near_liquidation", "ethAddress": whale, "coin": "BTC"})
    assert all(n > 0 for n in channel_counts(inbox.url).values())
