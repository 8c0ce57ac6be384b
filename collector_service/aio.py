"""Asyncio helpers shared by the collector's loops."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds have passed, whichever comes first.

    Not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 a cancel that arrives in the
    loop iteration where the event was set is dropped (``wait_for`` returns the finished wait), so a
    loop woken often (a poll ended, a write submitted) could outlive the service's stop: the
    collector then did not exit on SIGTERM.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
