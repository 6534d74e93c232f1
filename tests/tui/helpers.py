"""Shared by the TUI tests."""

import asyncio

from edgevla.drivers.bus import BusConfig

# One more retry than the driver's default; the status timeout comes from tests/conftest.py.
PATIENT = BusConfig(retries=4)


async def wait_for(pilot, condition, timeout: float = 20.0, describe=lambda: "") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds with `describe()`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}: {describe()}")
        await pilot.pause(0.05)
