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


def test_start_screen_lists_virtual_arms_on_any_link_and_ports_given_with_port(tmp_path, monkeypatch):
    from textual.widgets import DataTable

    from edgevla.firmware import serve_robot

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # this test's arms only

    async def scenario():
        app = EdgevlaApp(ports=("socket://127.0.0.1:5555",))
        async with app.run_test(size=(130, 36)) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#ports", DataTable)
            return {table.get_row_at(i)[0]: table.get_row_at(i)[1] for i in range(table.row_count)}

    with (
        serve_robot("so101_leader", link=tmp_path / "leader"),
        serve_robot("so101_follower", link=tmp_path / "follower"),
    ):
        listed = asyncio.run(scenario())
    assert list(listed)[0] == "socket://127.0.0.1:5555"  # what the user named comes first
    assert listed[str(tmp_path / "leader")].startswith("virtual so101_leader (pseudo-terminal /dev/pts/")
    assert listed[str(tmp_path / "follower")].startswith("virtual so101_follower")


def test_calibration_from_the_tui_goes_to_lerobots_folder_under_the_arm_id(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEVLA_CALIBRATION_DIR")
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))

    async def scenario():
        app = EdgevlaApp("so101_leader", MISSING, arm_id="bench")
        async with app.run_test(size=(130, 36)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CalibrationScreen))
            return app.screen.out

    assert asyncio.run(scenario()) == tmp_path / "teleoperators" / "so101_leader" / "bench.json"


def test_robot_with_more_than_one_port_is_one_line(capsys):
    from edgevla.cli import main

    assert main(["tui", "--robot", "so101_leader", "--port", "/dev/a", "--port", "/dev/b"]) == 2
    assert "give its --port once" in capsys.readouterr().err
