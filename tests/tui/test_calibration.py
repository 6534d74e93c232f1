"""The calibration screen driven by Textual's pilot against virtual arms on ptys."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np

from edgevla.drivers.calibration import load_calibration
from edgevla.drivers.robot import Robot
from edgevla.firmware import Faults, Sweep, serve_robot
from edgevla.firmware.launch import served_firmware
from edgevla.hardware import load_robot
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.calibration_session import Phase
from edgevla.tui.screens.calibration import CalibrationScreen

from .helpers import PATIENT, wait_for

JOINTS = load_robot("so101_leader").joint_names


class Hand:
    """A person at the arm: holds every joint at `centre` raw counts, or swings it around there."""

    def __init__(self, centre: float):
        self.centre, self.sweeping, self.t0 = centre, False, 0.0

    def position(self, joint: int, t: float) -> float:
        if not self.sweeping:
            self.t0 = t
            return self.centre
        return self.centre + 1500 * math.sin(2 * math.pi * (t - self.t0) / (1.0 + 0.2 * joint))


def screen_of(app) -> CalibrationScreen:
    assert isinstance(app.screen, CalibrationScreen)
    return app.screen


def swept(screen: CalibrationScreen, span: int) -> bool:
    """Every joint's live min/max, as the screen shows them, are `span` counts apart."""
    sample = screen.last_sample
    if sample is None or sample.mins is None or sample.maxes is None:
        return False
    return all(sample.maxes[joint] - sample.mins[joint] >= span for joint in JOINTS)


async def calibrate(
    pilot, app, sweep_seconds: float, before_finish=None, until_span: int | None = None
) -> CalibrationScreen:
    """Centre, sweep for `sweep_seconds` and, like a person watching the live ranges, on until
    every joint has covered `until_span` counts (a loaded machine samples the sweep sparsely)."""
    screen = screen_of(app)
    await wait_for(pilot, lambda: screen.phase is Phase.CENTRE and screen.last_sample is not None)
    await pilot.press("enter")  # homing (hand-guided) or start recording (auto)
    await wait_for(pilot, lambda: screen.phase is Phase.SWEEP)
    if before_finish:
        before_finish()
    await pilot.pause(sweep_seconds)
    if until_span is not None:
        await wait_for(
            pilot, lambda: swept(screen, until_span), timeout=30.0, describe=lambda: screen.last_sample
        )
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.phase in (Phase.REVIEW, Phase.FAILED))
    return screen


def assert_sensible(path, robot_name: str) -> dict:
    calibration = load_calibration(path)
    assert set(calibration) == set(JOINTS)
    for joint, cal in calibration.items():
        assert 0 <= cal.range_min < cal.range_max <= 4095, joint
        assert cal.range_max - cal.range_min > 2000, f"{joint}: {cal}"  # the sweep covered > half a turn
        assert abs(cal.homing_offset) <= 2047
    return json.loads(path.read_text())


async def finish(pilot, screen: CalibrationScreen) -> None:
    """Review -> write -> save, each on Enter."""
    assert screen.phase is Phase.REVIEW, screen.query_one("#instruction").render()
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.phase is Phase.WRITTEN)
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.phase is Phase.SAVED)


def check_profile_drives_the_arm(path, port: str) -> None:
    """The saved profile loads into the driver, which connects and reads in-range values."""
    with Robot("so101_leader", port, path, bus_config=PATIENT) as arm:
        state = arm.read_state()
    assert state.shape == (6,)
    assert np.all(state >= -100) and np.all(state <= 100)


def test_auto_calibration_of_a_sweeping_leader_saves_a_profile_the_driver_loads(calibration_dir):
    async def scenario():
        app = EdgevlaApp("so101_leader", arm.port, auto=True, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            screen = await calibrate(pilot, app, sweep_seconds=1.0, until_span=2100)
            await finish(pilot, screen)
            return screen.saved_path

    with serve_robot("so101_leader", motion=Sweep()) as arm:
        path = asyncio.run(scenario())
        assert path == calibration_dir / "so101_leader.json"
        assert_sensible(path, "so101_leader")
        check_profile_drives_the_arm(path, arm.port)


def test_hand_guided_calibration_twice_in_a_row(calibration_dir):
    """Centre pose off mid-turn (raw 3000), homing, sweep; then again on the calibrated arm."""
    hand = Hand(centre=3000)

    def start_moving():
        hand.sweeping = True

    async def scenario():
        app = EdgevlaApp("so101_leader", arm.port, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            profiles = []
            for _ in range(2):
                hand.sweeping = False
                screen = await calibrate(
                    pilot, app, sweep_seconds=1.0, before_finish=start_moving, until_span=2100
                )
                await finish(pilot, screen)
                profiles.append(json.loads(screen.saved_path.read_text()))
                await pilot.press("r")
            return profiles

    with serve_robot("so101_leader", motion=hand) as arm:
        first, second = asyncio.run(scenario())
        path = calibration_dir / "so101_leader.json"
        assert_sensible(path, "so101_leader")
        # homing puts the held pose (raw 3000) at 2047 both times: no offset build-up
        for profile in (first, second):
            for joint in JOINTS:
                assert profile[joint]["homing_offset"] == 3000 - 2047, joint
        check_profile_drives_the_arm(path, arm.port)


def test_servo_that_stops_answering_before_the_write_leaves_servos_and_file_untouched(calibration_dir):
    async def scenario():
        app = EdgevlaApp("so101_leader", arm.port, auto=True, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            screen = await calibrate(pilot, app, sweep_seconds=1.0)
            assert screen.phase is Phase.REVIEW
            arm.bus.faults = Faults(silent_ids=frozenset({3}))  # elbow_flex's cable comes loose
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.phase is Phase.FAILED)
            return str(screen.query_one("#instruction").render())

    with serve_robot("so101_leader", motion=Sweep()) as arm:
        message = asyncio.run(scenario())
        # the live reads or the pre-write ping find it first; either way the message names it
        assert "elbow_flex" in message and "othing" in message and "written" in message
        limits = [(s.get("Min_Position_Limit"), s.get("Max_Position_Limit")) for s in arm.bus.servos]
    assert limits == [(0, 4095)] * 6  # as homing reset them: no recorded range reached a servo
    assert not (calibration_dir / "so101_leader.json").exists()


def test_firmware_killed_mid_calibration_shows_the_error_and_saves_nothing(tmp_path, calibration_dir):
    link = tmp_path / "leader"
    with served_firmware("so101_leader", "--motion", "sweep", link=link) as server:

        async def scenario():
            app = EdgevlaApp("so101_leader", str(link), auto=True, bus_config=PATIENT)
            async with app.run_test(size=(130, 36)) as pilot:
                screen = screen_of(app)
                await wait_for(pilot, lambda: screen.phase is Phase.CENTRE)
                await pilot.press("enter")
                await wait_for(pilot, lambda: screen.phase is Phase.SWEEP)
                await pilot.pause(0.5)
                server.process.kill()  # the USB cable is pulled
                await wait_for(pilot, lambda: screen.phase is Phase.FAILED)
                await pilot.press("enter")  # keys after the failure do nothing harmful
                await pilot.pause(0.2)
                assert app.is_running
                return str(screen.query_one("#instruction").render())

        message = asyncio.run(scenario())
    assert "press r to reconnect" in message
    assert not (calibration_dir / "so101_leader.json").exists()
    assert not list(calibration_dir.glob("*.tmp"))


def test_an_arm_that_never_moved_is_refused_and_enter_writes_nothing(calibration_dir):
    async def scenario():
        app = EdgevlaApp("so101_leader", arm.port, auto=True, bus_config=PATIENT)
        async with app.run_test(size=(130, 36)) as pilot:
            screen = await calibrate(pilot, app, sweep_seconds=0.5)
            message = str(screen.query_one("#instruction").render())
            await pilot.press("enter")  # would write the limits of a calibration that passed
            await pilot.pause(0.5)
            return screen.phase, message

    with serve_robot("so101_leader") as arm:  # nobody moves it
        phase, message = asyncio.run(scenario())
        limits = [(s.get("Min_Position_Limit"), s.get("Max_Position_Limit")) for s in arm.bus.servos]
    assert phase is Phase.REVIEW
    assert "refused" in message and "shoulder_pan" in message and "gripper" in message, message
    assert "move each through its whole range" in message
    assert limits == [(0, 4095)] * 6
    assert not (calibration_dir / "so101_leader.json").exists()
