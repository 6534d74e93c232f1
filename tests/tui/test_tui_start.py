"""Start screen keyboard navigation into calibration, and the command palette."""

from __future__ import annotations

import asyncio

from tui_helpers import PATIENT, wait_for

from firmware import serve_robot
from tui.app import EdgevlaApp
from tui.inventory import Inventory, PortInfo, find_robots
from tui.screens.calibration import CalibrationScreen
from tui.screens.recipes import RecipesScreen


def test_pick_port_and_robot_then_calibrate_then_palette_to_recipes():
    async def scenario(port: str):
        inventory = Inventory([PortInfo(port, "virtual")], find_robots(), [], [])
        app = EdgevlaApp(inventory=inventory, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            await pilot.press("tab", "down", "down", "down", "c")  # robots table: so101_leader
            await wait_for(pilot, lambda: isinstance(app.screen, CalibrationScreen))
            screen = app.screen
            await wait_for(pilot, lambda: screen.last_sample is not None)
            picked = (screen.robot.name, screen.port, sorted(screen.last_sample.raw))
            await pilot.press("ctrl+p")
            await pilot.press(*"recipes")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RecipesScreen))
            return picked

    with serve_robot("so101_leader") as arm:
        robot, port, joints = asyncio.run(scenario(arm.port))
    assert (robot, port) == ("so101_leader", arm.port)
    assert joints == sorted(
        ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    )
