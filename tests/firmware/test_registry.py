"""Virtual arms list their ports while they serve, so tools find any --link (the TUI does)."""

from __future__ import annotations

import json
import subprocess
import sys

from edgevla.firmware import serve_robot
from edgevla.firmware.launch import served_firmware
from edgevla.firmware.registry import registry_dir, served_ports


def test_a_served_arm_is_listed_while_it_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    link = tmp_path / "anywhere" / "leader"
    link.parent.mkdir()
    with serve_robot("so101_leader", link=link) as arm:
        (listed,) = served_ports()
        assert (listed.port, listed.device, listed.robot) == (str(link), arm.server.device, "so101_leader")
    assert served_ports() == []


def test_an_arm_in_another_process_is_listed_and_a_dead_ones_entry_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    with served_firmware("koch_follower", link=tmp_path / "follower") as served:
        assert [p.port for p in served_ports()] == [served.port]
        served.process.kill()  # no chance to remove its entry
        served.process.wait()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = registry_dir() / "stale.json"
    stale.write_text(
        json.dumps({"port": "/dev/null", "device": "/dev/pts/99", "robot": "x", "pid": int(dead.stdout)})
    )
    assert served_ports() == []
    assert list(registry_dir().iterdir()) == []  # both dead entries removed
