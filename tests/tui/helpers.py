"""Shared by the TUI tests."""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def firmware_process(tmp_path, robot: str, *options: str) -> Iterator[subprocess.Popen]:
    """`edgevla firmware serve` in its own process (no GIL shared with the app under test);
    the pty link is tmp_path/robot, stdin takes the firmware's commands (`plug 1`)."""
    link = tmp_path / robot
    server = subprocess.Popen(
        [sys.executable, "-m", "edgevla", "firmware", "serve", "--robot", robot, "--link", str(link), *options],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout.readline().startswith("ready")
        server.link = str(link)
        yield server
    finally:
        server.kill()
        server.wait()
