"""NODE_* settings: clear errors for a wrong folder or start, and the node mode's wiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector_service.config import ConfigError, load_settings
from collector_service.service import Service

USER = "0x00000000000000000000000000000000000000e5"


def test_a_missing_folder_a_folder_without_streams_and_a_bad_start_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"NODE_DATA_DIR: .*missing is not a folder"):
        load_settings(node_data_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"NODE_DATA_DIR: .*--write-order-statuses --write-fills --batch-by-block"):
        load_settings(node_data_dir=tmp_path)
    (tmp_path / "node_fills" / "hourly").mkdir(parents=True)
    with pytest.raises(ConfigError, match="NODE_START: Input should be 'now' or 'earliest'"):
        load_settings(node_data_dir=tmp_path, node_start="yesterday")
    with pytest.raises(ConfigError, match="NODE_INFO_URL: must start with http"):
        load_settings(node_data_dir=tmp_path, node_info_url="127.0.0.1:3001")


def test_node_mode_follows_every_trader_without_websocket_or_polling(tmp_path: Path) -> None:
    (tmp_path / "node_order_statuses_by_block" / "hourly").mkdir(parents=True)
    users = [f"0x{n:040x}" for n in range(1, 51)]  # 5x the per-IP WebSocket cap
    service = Service(
        load_settings(node_data_dir=tmp_path, trader_addresses=",".join(users), collector_data_dir=tmp_path / "c")
    )
    assert service.node is not None and list(service.node.streams) == ["order_statuses", "twap_statuses"]
    assert service.feeds == [] and service.pollers == {} and service.not_followed() == []
    assert service.pipeline.users == set(users) and service.gauges()["tracked_traders"] == 50
