"""Shared by the TUI tests."""

import asyncio

from edgevla.drivers.bus import BusConfig

# The firmware answers from a thread of the test process; a loaded 2-core box is sometimes late.
PATIENT = BusConfig(retries=4, timeout_ms=60)


async def wait_for(pilot, condition, timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.05)
