"""Mark prices: scripted mark moves and the public `activeAssetCtx` feed.

`activeAssetCtx` is a public per-coin subscription: `{"type":"activeAssetCtx","coin":"BTC"}`
(PROTOCOL.md §1.1: it arrives on channel `"activeAssetCtx"`, on `"activeSpotAssetCtx"` for a
spot coin). It takes one of the per-IP subscriptions and no user slot (§3.1 counts users only
across user-specific subscriptions). The ack echoes `{"type":"activeAssetCtx","coin"}`; frames are
`{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{...}}}` where `ctx` is the perp asset
context of webData2's `assetCtxs` (§1.2: `funding, openInterest, prevDayPx, dayNtlVlm, premium,
oraclePx, markPx, midPx, impactPxs, dayBaseVlm`, all strings; no time field). The simulator serves
perps only (main dex and HIP-3); a spot or unknown coin gets the parse-error text. Frames come
right after the ack, in the push round after the coin's mark moved, and in every periodic full
push round.

Main-dex contexts are the real capture's, with `markPx` (and `oraclePx`/`midPx`) replaced by the
current mark once it was moved; HIP-3 ones are invented (`PerpDex.asset_ctxs`).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import orjson

from exchange_sim.market import MAIN_DEX, Market, fmt

CHANNEL = "activeAssetCtx"


def is_perp(market: Market, coin: str) -> bool:
    """True for a listed perp of the main dex or of a HIP-3 dex."""
    found = market.by_name.get(coin)
    return found is not None and not found.spot


def set_mark(market: Market, coin: str, px: Decimal | str) -> None:
    """Move a perp's mark price (positions' value, PnL and liquidation distance follow it)."""
    if not is_perp(market, coin):
        raise ValueError(f"{coin!r} is not a listed perp")
    mark = Decimal(str(px))
    if mark <= 0:
        raise ValueError(f"mark price of {coin!r} must be positive, got {px!r}")
    old = market.by_name[coin]
    new = dataclasses.replace(old, mark_px=mark)
    market.by_name[coin] = new
    coins = market.coins if old.dex == MAIN_DEX else market.dexes[old.dex].coins
    coins[coins.index(old)] = new


def asset_ctx(market: Market, coin: str) -> dict[str, Any]:
    """The coin's perp asset context as `activeAssetCtx` serves it."""
    info = market.by_name[coin]
    if info.dex == MAIN_DEX:
        index = next(i for i, meta in enumerate(market.meta["universe"]) if meta["name"] == coin)
        ctx = dict(market.asset_ctxs[index])
    else:
        dex = market.dexes[info.dex]
        ctx = dex.asset_ctxs()[dex.coins.index(info)]
    if Decimal(ctx["markPx"]) != info.mark_px:
        px = fmt(info.mark_px)
        ctx.update(markPx=px, oraclePx=px, midPx=px)
    return ctx


def active_asset_ctx_frame(market: Market, coin: str) -> bytes:
    """`{"channel":"activeAssetCtx","data":{"coin","ctx"}}`."""
    return orjson.dumps({"channel": CHANNEL, "data": {"coin": coin, "ctx": asset_ctx(market, coin)}})
