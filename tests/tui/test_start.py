"""Start screen keyboard navigation into calibration, and the command palette."""

from __future__ import annotations

import asyncio

from edgevla.tui.app import EdgevlaApp
from edgevla.tui.calibration_session import Phase
from edgevla.tui.inventory import Inventory, PortInfo, find_robots
from edgevla.tui.screens.calibration import CalibrationScreen
from edgevla.tui.screens.recipes import RecipesScreen

from .helpers import wait_for

MISSING = "/dev/ttyEDGEVLA-unplugged"


def test_pick_port_and_robot_then_calibrate_then_palette_to_recipes():
    async def scenario():
        inventory = Inventory([PortInfo(MISSING, "gone")], find_robots(), [], [])
        app = EdgevlaApp(inventory=inventory)
        async with app.run_test(size=(130, 36)) as pilot:
            await pilot.press("tab", "down", "down", "down", "c")  # robots table: so101_leader
            await wait_for(pilot, lambda: isinstance(app.screen, CalibrationScreen))
            screen = app.screen
            await wait_for(pilot, lambda: screen.phase is Phase.FAILED)
            picked = (screen.robot.name, screen.port, str(screen.query_one("#instruction").render()))
            await pilot.press("ctrl+p", *"recipes", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RecipesScreen))
            return picked

    robot, port, message = asyncio.run(scenario())
    assert (robot, port) == ("so101_leader", MISSING)
    assert f"serial port '{MISSING}' does not exist" in message and "press r to reconnect" in message
