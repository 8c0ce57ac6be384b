"""The info API of the simulator: `POST /info`, weighed against the per-IP REST budget.

`InfoApi` is a mixin of :class:`exchange_sim.server.ExchangeSim`, on :class:`exchange_sim.feeds.Feeds`
(whose user views and per-IP state it shares); the state it declares is set up there.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from exchange_sim import frames, rules
from exchange_sim.book import view_data
from exchange_sim.feeds import ADDRESS_RE, EMPTY_STATE, Feeds, book_options
from exchange_sim.logs import event
from exchange_sim.market import MAIN_DEX

INFO_DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"


class InfoApi(Feeds):
    """Answers `POST /info` requests."""

    _429_until: float

    async def _info_handler(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        ip = request.remote or "?"
        now = self._loop_time()
        self.stats.rest_requests += 1
        if now < self._429_until:
            self.stats.rest_429 += 1
            return web.Response(status=429, text="429 Too Many Requests")
        try:
            body = orjson.loads(await request.read())
            typ = body["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(status=422, text=INFO_DESERIALIZE_ERROR)
        weight = rules.LIGHT_INFO_WEIGHT if typ in rules.LIGHT_INFO_TYPES else rules.DEFAULT_INFO_WEIGHT
        window = self._ip(ip).rest_weight
        if window.used(now) + weight > cfg.rest_weight_per_min:
            self.stats.rest_429 += 1
            event("info_rate_limited", level=logging.DEBUG, ip=ip, type=typ, used=window.used(now))
            return web.Response(status=429, text="429 Too Many Requests")
        try:
            result = self._info(typ, body)
        except (KeyError, TypeError, ValueError):
            return web.Response(status=422, text=INFO_DESERIALIZE_ERROR)
        if typ in rules.PER_ITEM_WEIGHT_TYPES:
            weight += len(result) // rules.ITEMS_PER_EXTRA_WEIGHT
        window.add(now, weight)
        if isinstance(user := body.get("user"), str):
            self.stats.info_calls.setdefault((user.lower(), typ), []).append(now)
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    def _info(self, typ: str, body: dict[str, Any]) -> Any:
        ex = self.exchange

        def user() -> str:
            u = body["user"]
            if not isinstance(u, str) or not ADDRESS_RE.match(u):
                raise ValueError(u)
            return u.lower()

        dex = body.get("dex") or MAIN_DEX
        if not isinstance(dex, str):
            raise TypeError(dex)
        known = self._known_dex(dex)
        # Assumption: orderStatus, historicalOrders, userFills and userFillsByTime are per user
        # across all dexes (they take no dex parameter in any SDK seen).
        if typ == "orderStatus":
            oid = body["oid"]
            if not isinstance(oid, int | str):
                raise TypeError(oid)
            return ex.order_status(user(), oid)
        if typ == "historicalOrders":
            return ex.historical_orders(user())
        if typ == "frontendOpenOrders":
            return ex.frontend_open_orders(user(), dex) if known else []
        if typ == "openOrders":
            if not known:
                return []
            return [
                {
                    "coin": o.coin,
                    "limitPx": f["limitPx"],
                    "oid": o.oid,
                    "side": o.side,
                    "sz": f["sz"],
                    "timestamp": o.timestamp,
                    "origSz": f["origSz"],
                    "reduceOnly": o.reduce_only,
                    "cloid": o.cloid,
                }
                for o in ex.open_orders(user(), dex)
                for f in [o.frontend()]
            ]
        if typ == "clearinghouseState":
            if not known:
                return {**EMPTY_STATE, "time": self.clock.now_ms()}
            return ex.clearinghouse_state(user(), dex=dex)
        if typ == "userFills":
            return ex.user_fills(user())
        if typ == "userFillsByTime":
            start = int(body["startTime"])
            end = body.get("endTime")
            return ex.user_fills_by_time(user(), start, None if end is None else int(end))
        if typ == "twapHistory":
            return self.twaps.history(user())
        if typ == "webData2":
            u = user()
            view = self._view(u)
            frame = frames.webdata2_frame(
                self.market,
                view.user,
                frames.with_time(view.state, self.clock.now_ms()),
                view.orders,
                self.clock.now_ms(),
                view.twaps,
            )
            return orjson.loads(frame)["data"]
        if typ == "l2Book":
            coin = body["coin"]
            if not self.books.known(coin):
                raise ValueError(coin)  # unverified: what the exchange answers for an unknown coin
            n_sig_figs, mantissa = book_options(body)
            snap = self.books.snapshot(coin, self.clock.now_ms())
            return orjson.loads(view_data(snap, n_sig_figs, mantissa, False))
        if typ == "perpDexs":
            # The real shape (several SDKs): null stands for the first perp dex.
            return [None, *(d.info() for d in self.market.dexes.values())]
        if typ in ("meta", "metaAndAssetCtxs", "allMids") and not known:
            raise ValueError(dex)  # unverified: what the exchange answers for an unknown dex
        perp_dex = self.market.dexes.get(dex)
        if typ == "meta":
            return perp_dex.meta() if perp_dex else self.market.meta
        if typ == "metaAndAssetCtxs":
            if perp_dex:
                return [perp_dex.meta(), perp_dex.asset_ctxs()]
            return [self.market.meta, self.market.asset_ctxs]
        if typ == "allMids":
            # Dex "" lists main-dex perps and spot pairs ("PURR/USDC", "@107"), as the real one.
            coins = self.market.dex_coins(dex) if perp_dex else [*self.market.coins, *self.market.spot_coins]
            return {c.name: str(c.mark_px) for c in coins}
        raise ValueError(typ)

