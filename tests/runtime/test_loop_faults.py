"""The control loop under faults, on the virtual servo firmware over a real pty.

A servo that falls silent mid-run, a bus too slow for the requested rate and a hung (SIGSTOP'd)
worker process are each reported while the run goes on, then stop the loop once they outlast
their limit, with the arm holding its last goal.
"""

import os
import signal
import time
from contextlib import contextmanager

import pytest

from edgevla.drivers.robot import Robot
from edgevla.firmware.faults import Faults
from edgevla.firmware.robot import serve_robot
from edgevla.hosting import open_policy
from edgevla.runtime.loop import ControlLoop, LoopConfig
from edgevla.runtime.watchdog import FaultLimits
from edgevla.runtime.workers import PolicyWorker

from .helpers import expect, write_replay

ROBOT = "so101_follower"
SILENT_ID, SILENT_JOINT = 4, "wrist_flex"


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _events(loop) -> list[str]:
    out = []
    while not loop.events.empty():
        out.append(loop.events.get())
    return out


class SubmitLog(PolicyWorker):
    """The real worker, remembering the tick of every observation handed to the policy."""

    def __init__(self, policy):
        self.ticks: list[int] = []
        super().__init__(policy)

    def submit(self, tick, obs, guidance=None):
        taken = super().submit(tick, obs, guidance)
        if taken:
            self.ticks.append(tick)
        return taken


@pytest.fixture
def replay(tmp_path):
    return write_replay(tmp_path / "wave.npz", chunk_size=20, fps=30.0, frames=3000)


@contextmanager
def running(replay, transport: str, limits: FaultLimits, faults=None, worker_type=PolicyWorker):
    """A 30 fps loop started on a connected arm served by the firmware; yields (loop, firmware)
    and closes the worker and disconnects the arm after, whatever the test did with them."""
    with serve_robot(ROBOT, faults=faults) as served:
        robot = Robot(ROBOT, served.port)
        robot.connect()
        worker = None
        try:
            policy = open_policy(str(replay), transport=transport, expect=expect(fps=30.0))
            worker = worker_type(policy)
            config = LoopConfig(fps=30.0, limits=limits)
            yield ControlLoop(robot, worker, policy.spec, config).start(), served
        finally:
            if worker is not None:
                worker.close()
            robot.disconnect()


def test_a_servo_falling_silent_is_warned_at_once_then_stops_the_loop(replay, caplog):
    with running(replay, "thread", FaultLimits(failed_ticks=3), worker_type=SubmitLog) as (loop, served):
        _wait_for(lambda: loop.stats.chunks >= 2)
        served.bus.faults = Faults(silent_ids=frozenset({SILENT_ID}))  # its cable comes loose
        _wait_for(lambda: not loop.running, timeout=30)
        events = _events(loop)
        silent = loop.robot.silent_motors()
        loop.robot.disconnect(unreachable=silent)
        torque = {name: served.bus.servo(name).torque for name in loop.robot.joint_names}
    fault = loop.fault
    assert fault is not None and fault.kind == "bus", events
    assert "3 ticks in a row" in fault.message and SILENT_JOINT in fault.message
    # the first failed tick was reported before the loop gave up, naming the servo
    assert events[0].startswith("servo bus read failed") and SILENT_JOINT in events[0], events
    assert loop.stats.bus_errors == 3  # a failed read sends nothing: no second, doomed transaction
    # no observation built on the stale state went to the policy after the servo fell silent
    assert all(tick < fault.first_tick for tick in loop.worker.ticks)
    assert silent == [SILENT_JOINT]
    assert torque.pop(SILENT_JOINT)  # it heard nothing: still on, as it was
    assert not any(torque.values()), torque  # the others were turned off
    assert "could not turn torque off" not in caplog.text  # the silent one was not asked again


def test_a_bus_too_slow_for_the_rate_is_warned_with_the_rate_then_stops(replay):
    # 8 ms before each status packet: a sync read of 6 servos takes ~50 ms, a 30 fps tick 33 ms
    with running(replay, "thread", FaultLimits(slow_s=1.0), faults=Faults(delay_ms=8)) as (loop, _):
        _wait_for(lambda: not loop.running, timeout=30)
    events = _events(loop)
    warnings = [e for e in events if "30 asked" in e]
    assert warnings, events
    achieved = float(warnings[0].split("runs at ")[1].split(" Hz")[0])
    assert achieved < 27, warnings[0]
    assert loop.fault is not None and loop.fault.kind == "slow" and loop.fault.seconds >= 1.0
    assert loop.stats.bus_errors == 0  # slow, never failing


def test_a_hung_worker_process_is_reported_and_stops_the_loop(replay):
    with running(replay, "process", FaultLimits(starved_s=0.5)) as (loop, _):
        _wait_for(lambda: loop.stats.chunks >= 3)
        process = loop.worker.policy._link.proc
        os.kill(process.pid, signal.SIGSTOP)
        hung_at = time.monotonic()
        _wait_for(lambda: not loop.running, timeout=30)
        stopped_after = time.monotonic() - hung_at
        closing = time.monotonic()
        loop.worker.close()  # ends the stopped process too
        closed_in = time.monotonic() - closing
    fault = loop.fault
    assert fault is not None and fault.kind == "starved", _events(loop)
    assert "has not answered" in fault.message
    # the queue runs dry within one chunk (20 actions, 0.67 s), then 0.5 s of starvation
    assert 0.5 <= stopped_after < 0.67 + 0.5 + 2.0, stopped_after
    assert process.poll() is not None
    assert closed_in < 2.5, closed_in  # not the 3 s wait for a SIGTERM a stopped process ignores
