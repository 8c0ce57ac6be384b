"""Alert delivery to Slack, Discord, Telegram and the generic webhook (one local HTTP server posing
as all four), once per channel across a crash, per-channel failure and backoff, secrets kept out of
documents and logs, and each noise rule of alert_rules.toml with a case that fails without it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import dagster as dg
import pytest
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster import channels, outbox, rules, sensors
from orderwatch_dagster.resources import AlertChannels
from scripts import docs_hooks
from tests.alert_receivers import DISCORD_PATH, SECRETS, SLACK_PATH, TOKEN, WEBHOOK_PATH, FakeReceivers
from tests.dagster import scenario as sc

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
"""The events' time: after every seeded document (the sensor's first cursor)."""


class Clock:
    """The sensors' clock (``sensors.utc_now``), moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def receivers() -> Iterator[FakeReceivers]:
    r = FakeReceivers()
    yield r
    r.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(T0 + timedelta(seconds=2))
    monkeypatch.setattr(sensors, "utc_now", c)
    return c


@pytest.fixture
def set_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def write(text: str) -> None:
        path = tmp_path / "alert_rules.toml"
        path.write_text(text)
        monkeypatch.setenv(rules.RULES_ENV, str(path))

    write("")
    return write


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


class Sensor:
    """Ticks of ``fast_alert_sensor`` with a real cursor against the seeded MongoDB."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict, channels: AlertChannels) -> None:
        self.instance, self.resources, self.channels = instance, resources, channels
        self.cursor: str | None = None
        self.tick()  # the first tick starts the cursor at the newest seeded document

    def tick(self, cursor: str | bool | None = True) -> str:
        ctx = dg.build_sensor_context(
            cursor=self.cursor if cursor is True else cursor or None,
            instance=self.instance,
            resources={**self.resources, "alert_channels": self.channels},
        )
        result = sensors.fast_alert_sensor.evaluate_tick(ctx)
        self.cursor = result.cursor
        return result.skip_message or ""


@pytest.fixture
def sensor(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receivers: FakeReceivers, clock: Clock,
    set_rules: Callable[[str], None],
) -> Sensor:  # fmt: skip
    return Sensor(instance, resources, receivers.resource())


def place(db: Database, addr: str, oid: int, usd: float, at: datetime, coin: str = "BTC", **extra: object) -> str:
    """Store a new order of ``usd`` notional (px 100000) seen at ``at``; return its alertKey."""
    sz = str(usd / 100_000.0)
    doc = sc.order(addr, oid, "new", 0, at, coin=coin, side="B", sz=sz, px="100000.0", placed=at, created=at, **extra)
    db[schema.ORDERS].insert_one(doc)
    return f"{addr}:{oid}:new"


def fill(db: Database, addr: str, oid: int, seq: int, before: float, after: float, at: datetime) -> str:
    """Store a partial fill (size down, ``partialFill``) or, ``after`` = 0, the order's filled close."""
    prev, sz = str(before / 100_000.0), str(after / 100_000.0)
    if after:
        extra = {"prevSz": prev, "partialFill": True, "changes": ["sz"]}
        doc = sc.order(addr, oid, "updated", seq, at, coin="BTC", side="B", sz=sz, px="100000.0", placed=T0,
                       created=at, **extra)  # fmt: skip
        db[schema.ORDERS].insert_one(doc | {"origSz": "4.0"})
        return f"{addr}:{oid}:updated:{seq}"
    doc = sc.order(addr, oid, "closed", seq, at, coin="BTC", side="B", sz=prev, px="100000.0", placed=T0, created=at,
                   finalStatus="filled")  # fmt: skip
    db[schema.ORDERS].insert_one(doc)
    return f"{addr}:{oid}:closed"


def alert(db: Database, key: str) -> dict:
    doc = db[schema.ALERTS].find_one({"alertKey": key})
    assert doc is not None, key
    return doc


# Channels and their messages --------------------------------------------------------------------


def test_each_channel_gets_its_own_format(sensor: Sensor, seeded_db: Database, receivers: FakeReceivers) -> None:
    # A label with HTML/mrkdwn control characters: every channel must escape it.
    seeded_db[schema.WATCHLIST].update_one({"_id": sc.A}, {"$set": {"label": "Whale <A> & co"}})
    key = place(seeded_db, sc.A, 900, 200_000.0, T0, bookDepth1pctUsd=400_000.0)
    started = time.monotonic()
    assert "sent=4 failed=0" in sensor.tick()  # one message on each of the four channels
    print(f"alert tick with four channels: {time.monotonic() - started:.3f} s (bound: 30 s interval + one tick)")
    url = f"https://app.hyperliquid.xyz/explorer/address/{sc.A}"

    (generic,) = receivers.got("webhook")
    headers = next(r.headers for r in receivers.requests if r.channel == "webhook")
    assert headers["Idempotency-Key"] == key and [a["alertKey"] for a in generic["alerts"]] == [key]
    assert generic["alerts"][0]["label"] == "Whale <A> & co" and "decision" not in generic["alerts"][0]
    assert "large_order notional 0 -> 200000 USD" in generic["text"]

    (slack,) = receivers.got("slack")
    section = slack["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "Whale &lt;A&gt; &amp; co" in slack["text"]
    assert f"*<{url}|Whale &lt;A&gt; &amp; co ({sc.A})>* placed oid 900: *buy BTC*" in section["text"]
    assert "$0 → $200,000 (+$200,000)" in section["text"] and "+50 % of the 1 % book depth" in section["text"]
    assert "_large_order_" in section["text"]

    (discord,) = receivers.got("discord")
    (embed,) = discord["embeds"]
    assert embed["title"] == "placed oid 900 buy BTC" and embed["url"] == url
    assert embed["timestamp"] == T0.isoformat()
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Trader"] == f"Whale <A> & co ({sc.A})"  # Discord embeds are not markup
    assert fields["Notional"] == "$0 → $200,000 (+$200,000)" and fields["Reason"] == "large_order"
    assert fields["vs book"] == "+50 % of the 1 % book depth" and "Whale <A> & co" in discord["content"]

    (telegram,) = receivers.got("telegram")
    path = next(r.headers for r in receivers.requests if r.channel == "telegram")
    assert path is not None and telegram["parse_mode"] == "HTML" and telegram["chat_id"] == "-100777"
    assert f'<a href="{url}">Whale &lt;A&gt; &amp; co ({sc.A})</a> placed oid 900: <b>buy BTC</b>' in telegram["text"]
    assert "<i>large_order</i>" in telegram["text"]

    doc = alert(seeded_db, key)
    assert set(doc["deliveries"]) == {"webhook", "slack", "discord", "telegram"} and doc["notifiedAt"] is not None
    assert all(d["attempts"] == 1 and d["sentAt"] for d in doc["deliveries"].values())


def test_words_for_what_happened() -> None:
    base = {"ethAddress": sc.C, "oid": 7, "coin": "xyz:TSLA", "dex": "xyz", "side": "A", "alertKey": "k", "eventAt": T0}
    cases = [
        ({"action": "new"}, "placed"),
        ({"action": "new", "replacesOid": 6}, "amended (replaces oid 6)"),
        ({"action": "updated", "partialFill": True}, "partially filled"),
        ({"action": "updated", "partialFill": False}, "amended"),
        ({"action": "closed", "finalStatus": "filled"}, "filled"),
        ({"action": "closed", "finalStatus": "canceled"}, "cancelled"),
        ({"action": "closed", "finalStatus": "marginCanceled"}, "closed (marginCanceled)"),
    ]
    assert [channels.what_happened(base | extra) for extra, _ in cases] == [words for _, words in cases]
    line = channels.describe_alert(base | {"action": "closed", "finalStatus": "filled", "notionalBeforeUsd": 5e5,
                                           "notionalAfterUsd": 0.0}, rules.DEFAULT_TRADER_URL)  # fmt: skip
    assert (line.side, line.coin, line.size) == ("sell", "xyz:TSLA (dex xyz)", "$500,000 → $0 (-$500,000)")
    assert line.who == sc.C and line.url.endswith(sc.C) and line.vs_book is None


# Once per channel, failures, secrets ------------------------------------------------------------


def test_once_per_channel_across_a_crash_and_lost_cursors(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    key = place(seeded_db, sc.B, 910, 300_000.0, T0)
    real_save = outbox._save

    def crash_after_webhook_post(coll: object, doc: dict, rev: int | None) -> bool:
        if (doc.get("deliveries") or {}).get("webhook", {}).get("sentAt"):
            raise RuntimeError("killed between the POST and its bookkeeping")
        return real_save(coll, doc, rev)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "_save", crash_after_webhook_post)
    with pytest.raises(Exception, match="killed between"):
        sensor.tick()
    monkeypatch.setattr(outbox, "_save", real_save)
    state = alert(seeded_db, key)["deliveries"]["webhook"]
    assert state["attempts"] == 1 and "sentAt" not in state  # the intent was recorded, the result lost
    assert len(receivers.got("webhook")) == 1 and not receivers.got("slack")

    # The restarted sensor (cursor lost, then replayed): each channel has the message once; the
    # generic webhook twice with the same Idempotency-Key (the documented crash window), once the
    # crashed evaluation's lease has ended (before that, no evaluation may post it).
    sensor.tick(cursor=None)
    assert len(receivers.got("webhook")) == 1 and [len(receivers.got(n)) for n in ("slack", "telegram")] == [1, 1]
    clock.now += outbox.LEASE
    sensor.tick(cursor=None)
    sensor.tick(cursor=None)
    sensor.tick()
    idem = [r.headers["Idempotency-Key"] for r in receivers.requests if r.channel == "webhook"]
    assert idem == [key, key]
    assert [len(receivers.got(n)) for n in ("slack", "discord", "telegram")] == [1, 1, 1]
    doc = alert(seeded_db, key)
    assert doc["deliveries"]["webhook"]["attempts"] == 2 and doc["notifiedAt"] is not None
    # The daily asset re-upserting the alert changes nothing either.
    seeded_db[schema.ALERTS].update_one({"alertKey": key}, {"$setOnInsert": {"x": 1}}, upsert=True)
    sensor.tick(cursor=None)
    assert len(receivers.requests) == 5


def test_overlapping_evaluations_deliver_each_alert_once_per_channel(
    sensor: Sensor, seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receivers: FakeReceivers
) -> None:
    """An evaluation that outlives Dagster's gRPC timeout keeps running in the code server while
    the daemon starts the next tick: here a second evaluation runs in full while the first one's
    first POST is in flight, against the same MongoDB. Each alert reaches each channel once."""
    sensor.channels = other_channels = receivers.resource(timeout_s=300)  # the nested evaluation may be slow
    other = Sensor(instance, resources, other_channels)
    keys = sorted(place(seeded_db, addr, 930 + i, 300_000.0, T0) for i, addr in enumerate((sc.A, sc.B, sc.C)))
    nested: list[str] = []

    def second_evaluation(channel: str) -> None:
        receivers.on_post = None  # once: the second evaluation's own POSTs are answered at once
        nested.append(other.tick())

    receivers.on_post = second_evaluation
    first = sensor.tick()
    assert nested and "sent=" in nested[0] and "sent=" in first
    assert sorted(k for message in receivers.messages() for k in message) == keys
    assert [len(receivers.got(n)) for n in ("slack", "discord", "telegram")] == [3, 3, 3]
    for key in keys:
        doc = alert(seeded_db, key)
        assert doc["notifiedAt"] is not None and all(d["attempts"] == 1 for d in doc["deliveries"].values())


def test_one_claim_wins_among_concurrent_writers(seeded_db: Database) -> None:
    """The compare-and-set claim on the server itself (nx-27017 here, or MONGO_URI): eight threads
    claim the same message on the same channel at once, in twenty rounds; exactly one wins each."""
    coll = seeded_db[schema.ALERTS]

    def claim(doc_id: object, barrier: threading.Barrier, claims: list[dict | None]) -> None:
        barrier.wait()
        claims.append(outbox._update(coll, doc_id, partial(outbox._claimed, "webhook", T0)))

    for round_ in range(20):
        doc_id = coll.insert_one({"alertKey": f"race:{round_}", "decision": "send", "eventAt": T0}).inserted_id
        barrier = threading.Barrier(8)
        claims: list[dict | None] = []
        threads = [threading.Thread(target=claim, args=(doc_id, barrier, claims)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(c is not None for c in claims) == 1
        stored = coll.find_one({"_id": doc_id})
        assert stored["rev"] == 1 and stored["deliveries"]["webhook"]["attempts"] == 1


def test_a_crash_between_the_last_post_and_notified_at_is_repaired(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers
) -> None:
    key = place(seeded_db, sc.B, 915, 300_000.0, T0)
    sensor.tick()
    doc = alert(seeded_db, key)
    del doc["notifiedAt"]  # sent on every channel, killed before notifiedAt
    seeded_db[schema.ALERTS].replace_one({"_id": doc["_id"]}, doc)
    sensor.tick()
    assert alert(seeded_db, key)["notifiedAt"] is not None
    assert len(receivers.requests) == 4  # nothing sent again


def test_a_failing_channel_backs_off_while_the_others_deliver(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers, clock: Clock
) -> None:
    receivers.answers["discord"] = (500, {"message": "boom"})
    first = place(seeded_db, sc.A, 920, 200_000.0, T0)
    summary = sensor.tick()
    assert "sent=3 failed=1" in summary and "discord=0/1" in summary
    doc = alert(seeded_db, first)
    state = doc["deliveries"]["discord"]
    assert state["attempts"] == 1 and "HTTP 500" in state["lastError"] and "sentAt" not in state
    assert state["nextAttemptAt"] - clock.now == timedelta(seconds=30) and doc.get("notifiedAt") is None
    assert [len(receivers.got(n)) for n in ("webhook", "slack", "telegram")] == [1, 1, 1]

    # Not due yet: no retry. Due, endpoint back: delivered once there, nothing repeated elsewhere.
    clock.now += timedelta(seconds=20)
    sensor.tick()
    assert alert(seeded_db, first)["deliveries"]["discord"]["attempts"] == 1
    receivers.answers.pop("discord")
    clock.now += timedelta(seconds=11)
    sensor.tick()
    doc = alert(seeded_db, first)
    assert doc["deliveries"]["discord"]["attempts"] == 2 and doc["notifiedAt"] is not None
    assert [len(receivers.got(n)) for n in ("webhook", "slack", "discord", "telegram")] == [1, 1, 1, 1]

    # Discord's 429 asks for a wait: that wait, not the backoff, sets the next attempt.
    receivers.answers["discord"] = (429, {"message": "rate limited", "retry_after": 7.5, "global": False})
    second = place(seeded_db, sc.A, 921, 200_000.0, clock.now, coin="ETH")
    sensor.tick()
    state = alert(seeded_db, second)["deliveries"]["discord"]
    assert state["nextAttemptAt"] - clock.now == timedelta(seconds=7.5) and "HTTP 429" in state["lastError"]
    receivers.answers.pop("discord")
    clock.now += timedelta(seconds=8)
    sensor.tick()
    assert alert(seeded_db, second)["notifiedAt"] is not None and len(receivers.got("discord")) == 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_secrets_stay_out_of_documents_and_logs(
    seeded_db: Database, resources: dict, instance: dg.DagsterInstance, receivers: FakeReceivers, clock: Clock,
    set_rules: Callable[[str], None], capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # A server that echoes the request path in its error (Telegram's token, the webhook's secret
    # path), a refused connection (Slack), and a URL without a scheme (Discord: urllib names it).
    receivers.answers["telegram"] = (500, {"ok": False, "description": f"no bot at /bot{TOKEN}/sendMessage"})
    receivers.answers["webhook"] = (500, {"error": f"nothing at {WEBHOOK_PATH}"})
    broken = AlertChannels(
        webhook_url=receivers.base + WEBHOOK_PATH,
        slack_webhook_url=f"http://127.0.0.1:{_closed_port()}{SLACK_PATH}",
        discord_webhook_url=f"discord.invalid{DISCORD_PATH}",
        telegram_bot_token=TOKEN,
        telegram_chat_id="-100777",
        telegram_api_url=receivers.base + "/telegram",
    )
    sensor = Sensor(instance, resources, broken)
    key = place(seeded_db, sc.C, 930, 200_000.0, T0)
    capfd.readouterr()
    summary = sensor.tick()
    logged = capfd.readouterr().err  # Dagster's console log of the sensor
    assert "failed=4" in summary
    doc = alert(seeded_db, key)
    errors = {name: d["lastError"] for name, d in doc["deliveries"].items()}
    assert "ConnectionRefusedError" in errors["slack"] or "URLError" in errors["slack"]
    assert "unknown url type" in errors["discord"] and "<redacted>" in errors["discord"]
    assert "HTTP 500" in errors["telegram"] and "<redacted>" in errors["telegram"]
    assert "HTTP 500" in errors["webhook"] and "<redacted>" in errors["webhook"]
    assert logged.count("alert_delivery_failed") == 4  # the logs were captured...
    stored = json.dumps(list(seeded_db[schema.ALERTS].find({}, {"_id": 0})), default=str)
    for secret in SECRETS:  # ...and neither they nor the documents hold a secret
        assert secret not in logged and secret not in stored and secret not in summary


def test_redact_removes_urls_and_their_pieces() -> None:
    url = "https://hooks.slack.com/services/T000/B000/slacksecret0123456789"
    text = f"ValueError: bad {url}; path /services/T000/B000/slacksecret0123456789; id slacksecret0123456789"
    assert "slacksecret" not in channels.redact(text, [url, ""])


# Noise rules: each case fails without its rule ---------------------------------------------------


def test_floor_and_overrides_per_trader_and_coin(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers, set_rules: Callable[[str], None]
) -> None:
    set_rules(
        f"""
[delivery]
min_usd = 300_000
[traders."{sc.A.upper().replace("0X", "0x")}"]
min_usd = 150_000
[traders."{sc.C}"]
mute = true
[coins.ETH]
min_usd = 1_000_000
[coins.SOL]
min_usd = 100_000
"""
    )
    small_b = place(seeded_db, sc.B, 940, 200_000.0, T0)  # under the floor
    big_b = place(seeded_db, sc.B, 941, 400_000.0, T0)  # over it
    a_btc = place(seeded_db, sc.A, 942, 200_000.0, T0)  # A's own floor is lower
    a_eth = place(seeded_db, sc.A, 943, 200_000.0, T0, coin="ETH")  # the trader's floor beats the coin's
    b_eth = place(seeded_db, sc.B, 944, 800_000.0, T0, coin="ETH")  # ETH's floor is higher
    b_sol = place(seeded_db, sc.B, 945, 200_000.0, T0, coin="SOL")  # SOL's is lower
    c_big = place(seeded_db, sc.C, 946, 900_000.0, T0)  # muted trader
    sensor.tick()
    assert sorted(k for (k,) in receivers.messages()) == sorted([big_b, a_btc, a_eth, b_sol])
    reasons = {k: alert(seeded_db, k)["decisionReason"] for k in (small_b, b_eth, c_big)}
    assert reasons[small_b] == "floor: 200,000 USD < min_usd 300,000 (delivery)"
    assert reasons[b_eth] == "floor: 800,000 USD < min_usd 1,000,000 (coin ETH)"
    assert reasons[c_big] == f"muted (trader {sc.C})"
    assert {alert(seeded_db, k)["decision"] for k in (small_b, b_eth, c_big)} == {"suppressed"}
    assert seeded_db[schema.ALERTS].count_documents({}) == 7  # every alert is kept


def test_cooldown_per_trader_and_coin(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers, clock: Clock, set_rules: Callable[[str], None]
) -> None:
    set_rules("[delivery]\ncooldown_s = 600\n")
    first = place(seeded_db, sc.A, 950, 200_000.0, T0)
    again = place(seeded_db, sc.A, 951, 300_000.0, T0 + timedelta(seconds=60))  # same trader and coin
    other_coin = place(seeded_db, sc.A, 952, 300_000.0, T0 + timedelta(seconds=61), coin="ETH")
    other_trader = place(seeded_db, sc.B, 953, 300_000.0, T0 + timedelta(seconds=62))
    clock.now = T0 + timedelta(seconds=63)
    sensor.tick()
    later = place(seeded_db, sc.A, 954, 300_000.0, T0 + timedelta(seconds=601))
    clock.now = T0 + timedelta(seconds=602)
    sensor.tick()
    assert [k for (k,) in receivers.messages()] == [first, other_coin, other_trader, later]
    doc = alert(seeded_db, again)
    assert doc["decision"] == "suppressed" and doc["decisionReason"].startswith(f"cooldown: {first} 60 s apart")


def test_fills_of_one_order_within_the_window_go_out_as_one_message(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers, clock: Clock, set_rules: Callable[[str], None]
) -> None:
    set_rules("[delivery]\nmerge_window_s = 15\n")
    placed = place(seeded_db, sc.B, 960, 400_000.0, T0)
    clock.now = T0 + timedelta(seconds=1)
    sensor.tick()  # the placement: not a fill, sent at once
    partial = fill(seeded_db, sc.B, 960, 1, 400_000.0, 150_000.0, T0 + timedelta(seconds=3))
    clock.now = T0 + timedelta(seconds=4)
    sensor.tick()  # the partial fill waits for its window
    assert receivers.messages() == [[placed]]
    filled = fill(seeded_db, sc.B, 960, 2, 150_000.0, 0.0, T0 + timedelta(seconds=9))
    clock.now = T0 + timedelta(seconds=10)
    sensor.tick()
    assert receivers.messages() == [[placed]]
    clock.now = T0 + timedelta(seconds=18)  # the window (3 s + 15 s) is over
    sensor.tick()
    assert receivers.messages() == [[placed], [partial, filled]]
    assert all(len(receivers.got(n)) == 2 for n in ("slack", "discord", "telegram"))
    assert "2 fills merged" in receivers.got("slack")[1]["text"]
    assert "partially filled oid 960" in receivers.got("telegram")[1]["text"]
    assert "filled oid 960" in receivers.got("telegram")[1]["text"].split("partially filled oid 960")[1]
    doc = alert(seeded_db, filled)
    assert (doc["decision"], doc["mergedInto"]) == ("merged", partial) and doc["notifiedAt"] is not None
    assert alert(seeded_db, partial)["deliverAt"] == T0 + timedelta(seconds=18)


def test_quiet_hours_hold_alerts_for_one_digest(
    sensor: Sensor, seeded_db: Database, receivers: FakeReceivers, clock: Clock, set_rules: Callable[[str], None]
) -> None:
    set_rules('[quiet_hours]\nstart = "22:00"\nend = "06:00"\ntimezone = "Europe/Berlin"\n')
    night = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Berlin (UTC+1 in November)
    first = place(seeded_db, sc.A, 970, 200_000.0, night)
    second = place(seeded_db, sc.B, 971, 300_000.0, night + timedelta(hours=2))
    clock.now = night + timedelta(hours=2, seconds=1)
    sensor.tick()
    clock.now = datetime(2026, 11, 27, 4, 59, 59, tzinfo=UTC)  # 05:59:59 in Berlin
    sensor.tick()
    assert receivers.requests == []
    doc = alert(seeded_db, second)
    assert doc["decision"] == "held" and doc["decisionReason"] == "quiet hours until 2026-11-27T05:00:00+00:00"
    clock.now = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    sensor.tick()
    sensor.tick()
    assert receivers.messages() == [[first, second]]
    assert all(len(receivers.got(n)) == 1 for n in ("slack", "discord", "telegram"))
    assert "2 alert(s) held during quiet hours" in receivers.got("discord")[0]["content"]
    assert len(receivers.got("discord")[0]["embeds"]) == 2
    # After the period: straight through again.
    third = place(seeded_db, sc.C, 972, 300_000.0, clock.now)
    sensor.tick()
    assert receivers.messages() == [[first, second], [third]]


def test_quiet_hours_release_times() -> None:
    q = rules.QuietHours.model_validate({"start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"})
    assert q.release_at(datetime(2026, 11, 26, 20, 59, tzinfo=UTC)) is None  # 21:59 local
    assert q.release_at(datetime(2026, 11, 26, 21, 0, tzinfo=UTC)) == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert q.release_at(datetime(2026, 11, 27, 3, 0, tzinfo=UTC)) == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert q.release_at(datetime(2026, 11, 27, 5, 0, tzinfo=UTC)) is None
    day = rules.QuietHours.model_validate({"start": "12:00", "end": "13:00", "timezone": "UTC"})
    assert day.release_at(datetime(2026, 11, 27, 12, 30, tzinfo=UTC)) == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)


# The rules file --------------------------------------------------------------------------------


def test_the_committed_rules_file_is_the_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(rules.RULES_ENV, raising=False)
    committed = rules.load_rules()
    assert rules.DEFAULT_RULES_PATH.name == "alert_rules.toml" and rules.DEFAULT_RULES_PATH.is_file()
    assert committed.thresholds.params() == rules.AlertRules().thresholds.params()
    assert committed.near_liquidation == rules.AlertRules().near_liquidation
    page = (rules.DEFAULT_RULES_PATH.parent / "docs" / "alerts.md").read_text()
    assert rules.DEFAULT_RULES_PATH.read_text().strip() in docs_hooks.render(page)  # the docs show the file as it is


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[delivery]\nmin_usd = -5\n", "delivery.min_usd: Input should be greater than or equal to 0"),
        ("[coins.BTC]\nfloor = 1\n", "coins.BTC.floor: Extra inputs are not permitted"),
        ('[traders."0x12"]\nmute = true\n', "traders: Value error, not a 0x address of 40 hex digits: 0x12"),
        ('[quiet_hours]\nstart = "22:00"\nend = "06:00"\ntimezone = "Mars/Olympus"\n', "unknown time zone"),
        ("[delivery\n", "not valid TOML"),
    ],
)
def test_bad_rules_name_file_key_and_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, problem: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    monkeypatch.setenv(rules.RULES_ENV, str(path))
    with pytest.raises(rules.RulesError, match=f"^{path}: .*") as err:
        rules.load_rules()
    assert problem in str(err.value)


def test_missing_rules_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rules.RULES_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(rules.RulesError, match=r"nope\.toml: alert rules file not found"):
        rules.load_rules()
    monkeypatch.delenv(rules.RULES_ENV)
    monkeypatch.setattr(rules, "DEFAULT_RULES_PATH", tmp_path / "absent.toml")
    assert rules.load_rules() == rules.AlertRules()


def test_a_fill_chain_is_followed_to_its_first_order(seeded_db: Database) -> None:
    # The scenario's C amend chain 320 -> 321 -> 322 (cancel-and-replace, replacesOid on each new event).
    assert [outbox.chain_root(seeded_db, sc.C, oid) for oid in (320, 321, 322)] == [320, 320, 320]
    assert outbox.chain_root(seeded_db, sc.A, 101) == 101
