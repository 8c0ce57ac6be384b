"""HTTP ``/healthz`` (JSON) and ``/metrics`` (Prometheus text), bound to loopback by default."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry


async def start_health_server(
    host: str, port: int, snapshot: Callable[[], dict[str, Any]], registry: CollectorRegistry
) -> web.AppRunner:
    """Serve the endpoints until the returned runner is cleaned up."""

    async def healthz(_: web.Request) -> web.Response:
        body = snapshot()
        return web.Response(text=json.dumps(body, default=str), status=200 if body["ok"] else 503,
                            content_type="application/json")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
