"""A virtual leader/follower pair: two `edgevla firmware serve` processes on pseudo-terminals.

Used by `edgevla bench record` and the recording tests, so they drive the real driver stack
(vendor SDK over a real pty) against the virtual servo firmware instead of a fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from edgevla.firmware.launch import served_firmware


@contextmanager
def virtual_arm_pair(robot: str, folder: Path, timeout: float = 30.0) -> Iterator[tuple[str, str]]:
    """Serve `<robot>_leader` (sweeping joints, as if moved by hand) and `<robot>_follower`;
    yield their port paths; stop both on exit."""
    with ExitStack() as stack:
        leader = stack.enter_context(
            served_firmware(f"{robot}_leader", "--motion", "sweep", link=folder / "leader", timeout=timeout)
        )
        follower = stack.enter_context(
            served_firmware(
                f"{robot}_follower", "--motion", "hold", link=folder / "follower", timeout=timeout
            )
        )
        yield leader.port, follower.port
