"""A real terminal: `edgevla tui` inside tmux on a virtual leader served by `edgevla firmware serve`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from edgevla.firmware.launch import start_firmware

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def raw_values(pane: str) -> dict[str, int]:
    """joint -> the raw count shown on its bar."""
    values = {}
    for joint in JOINTS:
        found = re.search(rf"{joint}\s+(\d+)\s", pane)
        if found:
            values[joint] = int(found.group(1))
    return values


def test_tui_in_tmux_shows_six_joints_with_changing_values(tmp_path):
    link, socket, session = tmp_path / "leader", f"edgevla-test-{tmp_path.name}", "tui"
    server = start_firmware("so101_leader", "--motion", "sweep", link=link)
    tmux = ["tmux", "-L", socket]
    try:
        command = (
            f"EDGEVLA_CALIBRATION_DIR={shlex.quote(str(tmp_path))} {shlex.quote(sys.executable)} "
            f"-m edgevla tui --robot so101_leader --port {shlex.quote(str(link))}"
        )
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", session, "-x", "140", "-y", "40", command], check=True
        )
        subprocess.run([*tmux, "resize-window", "-t", session, "-x", "140", "-y", "40"], check=True)

        def capture() -> str:
            return subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
            ).stdout

        def pane_when(ready, what: str) -> str:
            """The pane once `ready(pane)` holds; a loaded machine can take seconds to redraw."""
            deadline = time.monotonic() + 30
            while True:
                pane = capture()
                if ready(pane):
                    return pane
                assert time.monotonic() < deadline, f"no {what} within 30 s:\n{pane}"
                time.sleep(0.25)

        first = raw_values(pane_when(lambda p: len(raw_values(p)) == len(JOINTS), "six joint bars"))
        subprocess.run([*tmux, "send-keys", "-t", session, "-l", "?"], check=True)  # help opens over it
        pane_when(lambda p: "edgevla TUI" in p, "help screen")
        subprocess.run([*tmux, "send-keys", "-t", session, "Escape"], check=True)

        def moved_on(pane: str) -> bool:
            values = raw_values(pane)
            return (
                "Hold the arm at the MIDDLE" in pane
                and len(values) == len(JOINTS)
                and (sum(values[joint] != first[joint] for joint in JOINTS) >= 5)
            )

        pane_when(moved_on, "calibration screen with every joint moved by the sweeping leader")
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        time.sleep(1.0)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        server.stop()
