"""The seeded ``trader_fills`` documents and their builder."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collector_service.schema import dex_of

from .base import D1, D2, D3, A, B, C, at


def fill(
    addr: str,
    oid: int,
    tid: int,
    when: datetime,
    *,
    coin: str,
    side: str,
    px: str,
    sz: str,
    crossed: bool,
    fee: str,
    fee_token: str = "USDC",
    closed_pnl: str = "0.0",
    direction: str = "Open Long",
    start_position: str = "0.0",
    **extra: Any,
) -> dict[str, Any]:
    """A ``trader_fills`` document as the collector writes it (every key the exchange sent)."""
    return {
        "coin": coin,
        "px": px,
        "sz": sz,
        "side": side,
        "time": when,
        "startPosition": start_position,
        "dir": direction,
        "closedPnl": closed_pnl,
        "hash": f"0x{tid:064x}",
        "oid": oid,
        "crossed": crossed,
        "fee": fee,
        "tid": tid,
        "feeToken": fee_token,
        "twapId": None,
        **extra,
        "ethAddress": addr,
        "dex": dex_of(coin),
        "source": "ws",
        "observedAt": when + timedelta(seconds=1),
        "createdAt": when + timedelta(seconds=2),
        "storedAt": when + timedelta(seconds=2),
    }


def fills() -> list[dict[str, Any]]:
    btc_a = {"coin": "BTC", "side": "B", "cloid": "0x" + "1" * 32}
    eth_c = {"coin": "ETH", "side": "A", "cloid": "0x" + "c2" * 16, "direction": "Open Short"}
    sol_b = {"coin": "SOL", "side": "B", "px": "200.0", "crossed": False}
    tsla = {"coin": "xyz:TSLA", "side": "B", "px": "250.0", "crossed": False}
    # fmt: off
    docs = [
        # D1: A sells 2 ETH with an IOC that never rested (no order event), closing part of a long.
        fill(A, 190, 9001, at(D1, "10:30:00"), coin="ETH", side="A", px="2990.0", sz="2.0", crossed=True,
             fee="2.691", closed_pnl="-20.0", direction="Close Long", start_position="5.0"),
        # 0.5 as maker (the partial fill seen at 01:00), then the rest, 1.5, as maker.
        fill(A, 101, 1011, at(D2, "00:59:59"), px="60000.0", sz="0.5", crossed=False, fee="3.0", **btc_a),
        fill(A, 101, 1012, at(D2, "01:59:59"), px="60000.0", sz="1.5", crossed=False, fee="9.0",
             start_position="0.5", **btc_a),
        # B-201: crossed for 40 on arrival (taker, below its limit), the rest 60 filled as maker.
        fill(B, 201, 2011, at(D2, "11:50:00"), coin="HYPE", side="B", px="1.25", sz="40.0", crossed=True,
             fee="0.0225"),
        fill(B, 201, 2012, at(D2, "11:54:59"), coin="HYPE", side="B", px="1.5", sz="60.0", crossed=False,
             fee="0.0135", start_position="40.0"),
        # B-202: 20 on D2 (the partial fill), the remaining 30 on D3 (not in D2's tables).
        fill(B, 202, 2021, at(D2, "13:05:00"), sz="20.0", fee="0.6", **sol_b),
        fill(B, 202, 2022, at(D3, "00:59:59"), sz="30.0", fee="0.9", start_position="20.0", **sol_b),
        # C's chain 320 -> 321 -> 322: 10 on 321, then 30 on 322 in two fills.
        fill(C, 321, 3211, at(D2, "10:14:59"), px="3010.0", sz="10.0", crossed=False, fee="4.515", **eth_c),
        fill(C, 322, 3221, at(D2, "10:29:58"), px="3020.0", sz="20.0", crossed=False, fee="9.06",
             start_position="-10.0", **eth_c),
        fill(C, 322, 3222, at(D2, "10:29:59"), px="3020.0", sz="10.0", crossed=False, fee="4.53",
             start_position="-30.0", **eth_c),
        # C-370: a spot IOC buy that never rested; the fee is charged in the bought token.
        fill(C, 370, 3701, at(D2, "12:30:00"), coin="@107", side="B", px="0.625", sz="160.0", crossed=True,
             fee="0.056", fee_token="HYPE", direction="Buy"),
        # C-350 on the HIP-3 dex xyz, through a builder.
        fill(C, 350, 3501, at(D2, "13:09:59"), sz="6.0", fee="0.225", builderFee="0.03", **tsla),
        fill(C, 350, 3502, at(D2, "13:19:59"), sz="4.0", fee="0.15", builderFee="0.02", start_position="6.0",
             **tsla),
        # C-360 closes half a BTC long entered at 50000.
        fill(C, 360, 3601, at(D2, "14:09:59"), coin="BTC", side="A", px="70000.0", sz="0.5", crossed=False,
             fee="5.25", closed_pnl="10000.0", direction="Close Long", start_position="0.5"),
    ]
    # fmt: on
    return docs
