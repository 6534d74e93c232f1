"""A virtual leader/follower pair: two `edgevla firmware serve` processes on pseudo-terminals.

Used by `edgevla bench record` and the recording tests, so they drive the real driver stack
(vendor SDK over a real pty) against the virtual servo firmware instead of a fake.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgevla.errors import EdgevlaError


def _serve(robot: str, link: Path, motion: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "edgevla", "firmware", "serve", "--robot", robot, "--link", str(link)]
    command += ["--motion", motion]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_ready(process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("ready "):
            return line.split(" ", 1)[1].strip()
        if not line and process.poll() is not None:
            raise EdgevlaError(f"virtual firmware exited: {process.stderr.read().strip()[-300:]}")
    raise EdgevlaError("virtual firmware did not print 'ready' in time")


@contextmanager
def virtual_arm_pair(robot: str, folder: Path, timeout: float = 30.0) -> Iterator[tuple[str, str]]:
    """Serve `<robot>_leader` (sweeping joints, as if moved by hand) and `<robot>_follower`;
    yield their port paths; stop both on exit."""
    processes = []
    try:
        processes.append(_serve(f"{robot}_leader", folder / "leader", "sweep"))
        processes.append(_serve(f"{robot}_follower", folder / "follower", "hold"))
        yield tuple(_wait_ready(process, timeout) for process in processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
