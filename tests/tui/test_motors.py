"""The motors screen against virtual arms: scan details, torque, jog within limits, setup.

The firmware runs in its own process here: a broadcast-ping scan collects every reply within
one timeout, and an in-process firmware thread competing with the app for the GIL answers late."""

from __future__ import annotations

import asyncio
from subprocess import PIPE

from textual.widgets import DataTable

from edgevla.drivers.bus import MotorBus
from edgevla.firmware.launch import served_firmware
from edgevla.hardware import load_robot
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.inventory import Inventory
from edgevla.tui.screens.motors import MotorsScreen

from .helpers import PATIENT, wait_for

EMPTY = Inventory([], [], [], [])


def status_of(screen) -> str:
    return str(screen.query_one("#motors-status").render())


async def open_motors(pilot, app, port: str) -> MotorsScreen:
    app.open_motors(port, "so101_follower")
    await wait_for(pilot, lambda: isinstance(app.screen, MotorsScreen))
    return app.screen


def test_scan_torque_and_jog_one_motor(tmp_path):
    async def scenario(port: str):
        app = EdgevlaApp(inventory=EMPTY, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            screen = await open_motors(pilot, app, port)
            await pilot.press("s")
            await wait_for(pilot, lambda: len(screen.rows) == 6, describe=lambda: status_of(screen))
            first_row = screen.query_one("#motor-table", DataTable).get_row_at(0)
            await pilot.press("down", "down", "t")  # elbow_flex, id 3
            await wait_for(pilot, lambda: screen.rows[2].torque, describe=lambda: status_of(screen))
            with MotorBus.for_robot(robot, port, config=PATIENT) as bus:
                before = bus.read("Present_Position", "elbow_flex")
            await pilot.press("right")
            await wait_for(pilot, lambda: "goal" in status_of(screen), describe=lambda: status_of(screen))
            return first_row, [row.torque for row in screen.rows], before, status_of(screen)

    robot = load_robot("so101_follower")
    with served_firmware("so101_follower", link=tmp_path / "arm") as server:
        first_row, torques, before, status = asyncio.run(scenario(server.port))
        with MotorBus.for_robot(robot, server.port, config=PATIENT) as bus:
            goal = bus.read("Goal_Position", "elbow_flex")
    assert first_row == ["1", "777", "3", "1000000", "7.4 V", "32", "off", "none"]
    assert torques == [False, False, True, False, False, False]
    assert goal == before + 40 and f"goal {goal}" in status, (goal, before, status)


def test_setup_gives_each_new_servo_its_joint_id(tmp_path):
    async def scenario(server):
        app = EdgevlaApp(inventory=EMPTY, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            screen = await open_motors(pilot, app, server.port)
            await pilot.press("n")
            assert "connect ONLY the 'shoulder_pan' servo" in status_of(screen)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.setup_joint == 1, describe=lambda: status_of(screen))
            server.process.stdin.write("plug 1\n")  # the person swaps in the next new servo
            server.process.stdin.flush()
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.setup_joint == 2, describe=lambda: status_of(screen))
            return status_of(screen)

    with served_firmware("so101_follower", "--fresh", link=tmp_path / "arm", stdin=PIPE) as server:
        status = asyncio.run(scenario(server))
        with MotorBus.for_robot(load_robot("so101_follower"), server.port, config=PATIENT) as bus:
            assert bus.ping_id(2, attempts=3)  # the second servo answers as shoulder_lift now
    assert "'shoulder_lift': id 1 at 1000000 baud -> id 2" in status
    assert "connect ONLY the 'elbow_flex' servo" in status
