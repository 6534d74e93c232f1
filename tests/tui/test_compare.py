"""Leader and follower side by side: agreeing joints pass, a joint held elsewhere is flagged."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from edgevla.firmware import serve_robot
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.inventory import Inventory
from edgevla.tui.screens.compare import CompareScreen

from .helpers import PATIENT, wait_for

REPO = Path(__file__).resolve().parents[2]


class PanAside:
    """A hand holds the leader's shoulder_pan far from mid-range; other joints stay put."""

    def position(self, joint: int, t: float) -> float | None:
        return 3300.0 if joint == 0 else None


def test_leader_and_follower_side_by_side_flags_the_joint_that_disagrees(calibration_dir):
    calibration_dir.mkdir(parents=True, exist_ok=True)
    for name in ("so101_leader", "so101_follower"):
        shutil.copy(REPO / "calibration" / f"{name}.json", calibration_dir)

    async def scenario():
        app = EdgevlaApp(
            inventory=Inventory([], [], [], []), bus_config=PATIENT, compare=("so101", lead.port, follow.port)
        )
        async with app.run_test(size=(130, 36)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
            screen = app.screen
            await wait_for(
                pilot,
                lambda: screen.last is not None,
                describe=lambda: screen.query_one("#compare-status").render(),
            )
            await pilot.pause(0.3)
            return str(screen.query_one("#compare-table").render())

    with serve_robot("so101_leader", motion=PanAside()) as lead, serve_robot("so101_follower") as follow:
        table = asyncio.run(scenario())
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert set(rows) == {"shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"}
    assert "disagree" in rows["shoulder_pan"]
    assert all("✓" in rows[joint] for joint in rows if joint != "shoulder_pan"), table
