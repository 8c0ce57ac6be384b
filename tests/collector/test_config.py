"""Configuration: validation messages that name the variable, address lists, masking, sharding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector_service.config import ConfigError, load_settings, mask_uri
from collector_service.plan import owned, plan_connections

A = "0x" + "ab" * 20
B = "0x" + "CD" * 20


def test_addresses_from_env_and_file_validated_lowercased_deduplicated(tmp_path: Path) -> None:
    listing = tmp_path / "traders.txt"
    listing.write_text(f"# desk A\n{B}\n\n  {A.upper().replace('0X', '0x')}  # again\n")
    settings = load_settings(trader_addresses=f"{A}, {B}", trader_addresses_file=listing)
    assert settings.all_traders() == [A, B.lower()]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"trader_addresses": "0x1234"}, "TRADER_ADDRESSES"),
        ({"trader_ws_clients": 0}, "TRADER_WS_CLIENTS"),
        ({"trader_ws_feed": "orderUpdates"}, "TRADER_WS_FEED"),
        ({"trader_ws_source_addresses": "127.0.0.2,not-an-ip"}, "TRADER_WS_SOURCE_ADDRESSES"),
        ({"mongo_uri": "postgres://x"}, "MONGO_URI"),
        ({"hyperliquid_ws_url": "https://api.hyperliquid.xyz/ws"}, "HYPERLIQUID_WS_URL"),
        ({"trader_orders_ws_flush_interval": -1}, "TRADER_ORDERS_WS_FLUSH_INTERVAL"),
        ({"trader_shard_index": 2, "trader_shard_count": 2}, "TRADER_SHARD_INDEX"),
    ],
)
def test_bad_values_name_the_variable(overrides: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**overrides)


def test_bad_address_in_file_names_file_and_line(tmp_path: Path) -> None:
    listing = tmp_path / "traders.txt"
    listing.write_text(f"{A}\n0xnothex\n")
    with pytest.raises(ConfigError, match=r"TRADER_ADDRESSES_FILE: .*traders.txt:2: '0xnothex'"):
        load_settings(trader_addresses_file=listing)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(trader_addresses_file=tmp_path / "missing.txt")


def test_mask_uri_hides_passwords() -> None:
    assert mask_uri("mongodb://user:s3cret@db1:27017,db2/?authSource=admin") == "mongodb://user:***@db1:27017,db2/?authSource=admin"
    assert "s3cret" not in mask_uri("mongodb://h/?password=s3cret&x=1")


def test_check_config_cli(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "MONGO_URI": "mongodb://u:hunter2@127.0.0.1:1", "TRADER_ADDRESSES": A}
    ok = subprocess.run([sys.executable, "-m", "collector_service", "check-config"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and '"MONGO_URI": "mongodb://u:***@127.0.0.1:1"' in ok.stdout
    assert "hunter2" not in ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-m", "collector_service", "check-config"],
                         env={**env, "TRADER_WS_MAX_USERS_PER_IP": "lots"}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "TRADER_WS_MAX_USERS_PER_IP" in bad.stderr


def test_sharding_splits_traders_without_overlap() -> None:
    traders = [f"0x{i:040x}" for i in range(1, 101)]
    shards = [owned(traders, i, 3) for i in range(3)]
    assert sorted(t for shard in shards for t in shard) == sorted(traders)
    assert all(len(s) > 20 for s in shards)


def test_plan_respects_per_ip_cap_and_clients() -> None:
    traders = [f"0x{i:040x}" for i in range(1, 26)]
    plan = plan_connections(traders, ["127.0.0.2", "127.0.0.3"], max_users_per_ip=10, clients=3)
    by_egress = plan.users_by_egress()
    assert [len(v) for v in by_egress.values()] == [10, 10]
    assert len(plan.connections) == 6 and plan.over_capacity == tuple(traders[20:])
    assert all(1 <= len(c.users) <= 4 for c in plan.connections)
