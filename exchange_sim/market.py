"""Market data from the real webData2 capture: coin universe, mark prices and frame bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources

import orjson

SAMPLE_NAME = "webData2_ws_capture_subscribe_snapshot_unsubscribe.json"


@dataclass(frozen=True)
class Coin:
    """One perpetual from `meta.universe`, with its mark price from `assetCtxs`."""

    name: str
    sz_decimals: int
    max_leverage: int
    mark_px: Decimal


class Market:
    """The coin universe and the market-data parts of a webData2 frame, serialized once."""

    def __init__(self, sample: dict) -> None:
        data = sample["data"]
        self.coins: list[Coin] = []
        for meta, ctx in zip(data["meta"]["universe"], data["assetCtxs"], strict=True):
            if meta.get("isDelisted"):
                continue
            self.coins.append(
                Coin(
                    meta["name"],
                    int(meta["szDecimals"]),
                    int(meta["maxLeverage"]),
                    Decimal(ctx["markPx"]),
                )
            )
        self.by_name = {c.name: c for c in self.coins}
        # webData2 frames are assembled from these byte strings around the user's part,
        # keeping the real capture's key order (PROTOCOL.md §1.2).
        self.wd2_meta_part = (
            b',"meta":' + orjson.dumps(data["meta"]) + b',"assetCtxs":' + orjson.dumps(data["assetCtxs"])
        )
        self.wd2_tail = b',"spotAssetCtxs":' + orjson.dumps(data["spotAssetCtxs"]) + b"}}"
        self.meta = data["meta"]
        self.asset_ctxs = data["assetCtxs"]

    @classmethod
    def load(cls) -> Market:
        """The market from the packaged real capture."""
        text = resources.files("exchange_sim").joinpath("data", SAMPLE_NAME).read_text()
        frames = json.loads(text)
        return cls(next(f for f in frames if f.get("channel") == "webData2"))

    def coin(self, name: str) -> Coin:
        """The coin called `name`, or a generic 1.0-priced coin for names outside the universe."""
        return self.by_name.get(name) or Coin(name, 2, 10, Decimal("1.0"))

    def round_px(self, coin: Coin, px: Decimal) -> Decimal:
        """At most 5 significant figures and 6 - szDecimals decimals (HL tick rule)."""
        if px <= 0:
            px = Decimal("0.000001")
        exp = px.adjusted() - 4
        px = px.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP)
        max_dec = max(0, 6 - coin.sz_decimals)
        return (
            px.quantize(Decimal(1).scaleb(-max_dec), rounding=ROUND_HALF_UP)
            if -int(px.as_tuple().exponent) > max_dec
            else px
        )

    def round_sz(self, coin: Coin, sz: Decimal) -> Decimal:
        """A size rounded to the coin's szDecimals, at least one lot."""
        lot = Decimal(1).scaleb(-coin.sz_decimals)
        return max(lot, sz.quantize(lot, rounding=ROUND_HALF_UP))


def fmt(d: Decimal) -> str:
    """A decimal string as Hyperliquid writes it: no exponent, at least one decimal ("10.0")."""
    if d == d.to_integral_value():
        return f"{int(d)}.0"
    s = format(d.normalize(), "f")
    return s
