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

        deadline, first = time.monotonic() + 30, {}
        while len(first) < len(JOINTS) and time.monotonic() < deadline:
            time.sleep(0.5)
            first = raw_values(capture())
        assert len(first) == len(JOINTS), capture()
        subprocess.run([*tmux, "send-keys", "-t", session, "-l", "?"], check=True)  # help opens over it
        time.sleep(1.0)
        assert "edgevla TUI" in capture()
        subprocess.run([*tmux, "send-keys", "-t", session, "Escape"], check=True)
        time.sleep(1.0)
        pane = capture()
        second = raw_values(pane)
        assert "Hold the arm at the MIDDLE" in pane
        assert len(second) == len(JOINTS), pane
        moved = [joint for joint in JOINTS if first[joint] != second[joint]]
        assert len(moved) >= 5, (first, second)  # the sweeping leader moves every joint
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        time.sleep(1.0)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        server.stop()
