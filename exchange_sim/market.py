"""Market data: main-dex perps and spot from the real webData2 capture, plus HIP-3 perp dexes.

Coins are named as the exchange names them in orders and fills (PROTOCOL.md §1.4):
main-dex perps `"BTC"`, spot pairs `"PURR/USDC"` or `"@107"`, HIP-3 (builder-deployed perp
dex) coins `"<dex>:<COIN>"` such as `"xyz:TSLA"`. Spot orders belong to the first perp dex
(dex `""`): "Spot open orders are only included with the first perp dex" (official Info page).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

import orjson

SAMPLE_NAME = "webData2_ws_capture_subscribe_snapshot_unsubscribe.json"
MAIN_DEX = ""
PERP_MAX_DECIMALS = 6  # price decimals <= 6 - szDecimals for perps (HL tick rule)
SPOT_MAX_DECIMALS = 8  # ... and 8 - szDecimals for spot
HIP3_DEFAULT_MAX_LEVERAGE = 10

# Builder-deployed (HIP-3) perp dexes the simulator lists by default. INVENTED: no real capture
# of a HIP-3 dex's meta/assetCtxs (or of perpDexs) is in the repository, so marks, szDecimals
# and maxLeverage are made up; only the naming ("xyz:TSLA") and the per-dex feeds follow the
# protocol notes. name -> (fullName, {coin: (markPx, szDecimals, maxLeverage)}).
DEFAULT_HIP3_DEXES: dict[str, tuple[str, dict[str, tuple[str, int, int]]]] = {
    "xyz": (
        "XYZ equities (simulated)",
        {"TSLA": ("251.37", 3, 10), "NVDA": ("181.42", 3, 10), "GOLD": ("2412.5", 4, 20)},
    ),
    "flx": (
        "Felix-like commodities (simulated)",
        {"OIL": ("74.815", 2, 10), "SILVER": ("31.284", 2, 10)},
    ),
}


def dex_of(coin: str) -> str:
    """The perp dex whose feeds carry orders on `coin`: `"xyz"` for `"xyz:TSLA"`, else `""`
    (main-dex perps and spot pairs). The simulator's own implementation of the rule."""
    dex, sep, _ = coin.partition(":")
    return dex if sep else MAIN_DEX


def is_spot_name(coin: str) -> bool:
    """True for spot coin names: `"PURR/USDC"` or `"@<index>"`."""
    return "/" in coin or coin.startswith("@")


def sz_decimals_for(px: Decimal) -> int:
    """A plausible szDecimals for a price (one lot worth ~$0.1-$1), for coins whose real meta
    is not in the capture (spot, HIP-3): BTC-like 5, SOL-like 2, sub-dollar coins 0."""
    if px <= 0:
        return 0
    return max(0, min(5, math.floor(math.log10(float(px)))))


@dataclass(frozen=True)
class Coin:
    """One tradable coin: its szDecimals, maxLeverage (1 for spot) and mark price."""

    name: str
    sz_decimals: int
    max_leverage: int
    mark_px: Decimal
    dex: str = MAIN_DEX  # the perp dex whose feeds carry its orders ("" for spot too)
    spot: bool = False


@dataclass
class PerpDex:
    """A builder-deployed (HIP-3) perp dex: its perpDexs entry and its coins."""

    name: str
    full_name: str
    deployer: str
    coins: list[Coin] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """Its element of the `perpDexs` info response."""
        return {
            "name": self.name,
            "fullName": self.full_name,
            "deployer": self.deployer,
            "oracleUpdater": None,
            "feeRecipient": None,
        }

    def meta(self) -> dict[str, Any]:
        """`meta` for this dex, in the main meta's shape (invented values)."""
        return {
            "universe": [
                {"szDecimals": c.sz_decimals, "name": c.name, "maxLeverage": c.max_leverage, "marginTableId": 0}
                for c in self.coins
            ],
            "marginTables": [],
        }

    def asset_ctxs(self) -> list[dict[str, Any]]:
        """`assetCtxs` for this dex (one per universe entry; invented, all strings)."""
        out = []
        for c in self.coins:
            px = str(c.mark_px)
            out.append(
                {
                    "funding": "0.0000125",
                    "openInterest": "0.0",
                    "prevDayPx": px,
                    "dayNtlVlm": "0.0",
                    "premium": "0.0",
                    "oraclePx": px,
                    "markPx": px,
                    "midPx": px,
                    "impactPxs": [px, px],
                    "dayBaseVlm": "0.0",
                }
            )
        return out


class Market:
    """The coin universe and the market-data parts of a webData2 frame, serialized once.

    `coins` are the main-dex perps (the real `meta.universe`, delisted ones dropped),
    `spot_coins` the real `spotAssetCtxs` pairs, `dexes` the HIP-3 perp dexes by name.
    """

    def __init__(self, sample: dict, *, hip3_dexes: bool = True) -> None:
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
        # Spot marks are real (spotAssetCtxs); szDecimals are not in the capture (it has no
        # spotMeta), so they are derived from the price.
        self.spot_coins: list[Coin] = []
        for ctx in data["spotAssetCtxs"]:
            px = Decimal(ctx["markPx"])
            if px > 0:
                self.spot_coins.append(Coin(ctx["coin"], sz_decimals_for(px), 1, px, MAIN_DEX, spot=True))
        self.by_name = {c.name: c for c in (*self.coins, *self.spot_coins)}
        # The 30 busiest spot pairs by day volume: what the random traders trade.
        volume = {ctx["coin"]: Decimal(ctx["dayNtlVlm"]) for ctx in data["spotAssetCtxs"]}
        self.active_spot = sorted(self.spot_coins, key=lambda c: volume[c.name], reverse=True)[:30]
        self.dexes: dict[str, PerpDex] = {}
        # webData2 frames are assembled from these byte strings around the user's part,
        # keeping the real capture's key order (PROTOCOL.md §1.2).
        self.wd2_meta_part = (
            b',"meta":' + orjson.dumps(data["meta"]) + b',"assetCtxs":' + orjson.dumps(data["assetCtxs"])
        )
        self.wd2_tail = b',"spotAssetCtxs":' + orjson.dumps(data["spotAssetCtxs"]) + b"}}"
        self.meta = data["meta"]
        self.asset_ctxs = data["assetCtxs"]
        if hip3_dexes:
            for name, (full, coins) in DEFAULT_HIP3_DEXES.items():
                self.add_dex(
                    name,
                    {c: px for c, (px, _, _) in coins.items()},
                    full_name=full,
                    sz_decimals={c: d for c, (_, d, _) in coins.items()},
                    max_leverage={c: lev for c, (_, _, lev) in coins.items()},
                )

    @classmethod
    def load(cls, *, hip3_dexes: bool = True) -> Market:
        """The market from the packaged real capture (plus the default HIP-3 dexes)."""
        text = resources.files("exchange_sim").joinpath("data", SAMPLE_NAME).read_text()
        frames = json.loads(text)
        return cls(next(f for f in frames if f.get("channel") == "webData2"), hip3_dexes=hip3_dexes)

    def add_dex(
        self,
        name: str,
        coins: dict[str, Decimal | str | float],
        *,
        full_name: str | None = None,
        deployer: str | None = None,
        sz_decimals: dict[str, int] | None = None,
        max_leverage: dict[str, int] | None = None,
    ) -> PerpDex:
        """Add a HIP-3 perp dex with `coins` (`"TSLA"` or `"xyz:TSLA"` -> mark price).

        szDecimals default to a price-derived value and maxLeverage to 10 (invented).
        """
        if not name or ":" in name or name != name.strip():
            raise ValueError(f"bad perp dex name {name!r}")
        if name in self.dexes:
            raise ValueError(f"perp dex {name!r} already exists")
        dex = PerpDex(
            name,
            full_name or f"{name} (simulated)",
            deployer or "0x" + hashlib.sha256(f"orderwatch-sim-dex:{name}".encode()).hexdigest()[:40],
        )
        for raw, px in coins.items():
            short = raw.split(":", 1)[1] if raw.startswith(name + ":") else raw
            if ":" in short or not short:
                raise ValueError(f"coin {raw!r} does not belong to dex {name!r}")
            mark = Decimal(str(px))
            if mark <= 0:
                raise ValueError(f"mark price of {raw!r} must be positive")
            coin = Coin(
                f"{name}:{short}",
                (sz_decimals or {}).get(short, sz_decimals_for(mark)),
                (max_leverage or {}).get(short, HIP3_DEFAULT_MAX_LEVERAGE),
                mark,
                name,
            )
            dex.coins.append(coin)
            self.by_name[coin.name] = coin
        self.dexes[name] = dex
        return dex

    def dex_coins(self, dex: str) -> list[Coin]:
        """The perps of one dex: main-dex perps for `""`, else the HIP-3 dex's coins."""
        if dex == MAIN_DEX:
            return self.coins
        d = self.dexes.get(dex)
        return d.coins if d else []

    def coin(self, name: str) -> Coin:
        """The coin called `name`, or a generic 1.0-priced coin for names outside the universe."""
        found = self.by_name.get(name)
        if found is not None:
            return found
        spot = is_spot_name(name)
        return Coin(name, 2, 1 if spot else 10, Decimal("1.0"), dex_of(name), spot)

    def round_px(self, coin: Coin, px: Decimal) -> Decimal:
        """At most 5 significant figures and (6 perp / 8 spot) - szDecimals decimals (HL tick rule)."""
        if px <= 0:
            px = Decimal("0.000001")
        exp = px.adjusted() - 4
        px = px.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP)
        max_dec = max(0, (SPOT_MAX_DECIMALS if coin.spot else PERP_MAX_DECIMALS) - coin.sz_decimals)
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
