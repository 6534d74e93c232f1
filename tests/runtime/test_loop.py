"""Control-loop scheduling against a minimal recording RobotIO (pure timing and ordering logic).

The acceptance tests against the virtual servo firmware live in test_loop_firmware.py.
"""

import os
import signal
import time

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.hosting import open_policy
from edgevla.runtime.loop import ControlLoop, LoopConfig, budget_warning
from edgevla.runtime.replay import ReplayPolicy
from edgevla.runtime.workers import PolicyWorker

from .helpers import expect, wave_actions, write_replay


class Recorder:
    """RobotIO that records goals and reads back the last one (an ideal, instant arm)."""

    name = "recorder"
    joint_names = ("a", "b", "c", "d", "e", "f")

    def __init__(self, fault_rate: float = 0.0):
        self.state = np.full(6, 50.0, np.float32)  # away from the wave, so holds are recognisable
        self.goals: list[np.ndarray] = []
        self.rng = np.random.default_rng(0)
        self.fault_rate = fault_rate

    def connect(self):
        pass

    def read_state(self):
        if self.rng.random() < self.fault_rate:
            raise EdgevlaError("bus: no status packet")
        return self.state.copy()

    def send_action(self, goal, present=None):
        if self.rng.random() < self.fault_rate:
            raise EdgevlaError("bus: write failed")
        self.state = np.asarray(goal, np.float32).copy()
        self.goals.append(self.state)
        return self.state

    def disconnect(self):
        pass


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _run(loop: ControlLoop, seconds: float, chunks: int = 0) -> ControlLoop:
    """Run for `seconds`, and on a busy machine longer, until `chunks` chunks have arrived."""
    loop.record_sent()
    loop.start()
    time.sleep(seconds)
    try:
        _wait_for(lambda: loop.stats.chunks >= chunks)
    finally:
        loop.stop()
    return loop


@pytest.mark.parametrize("merge", ["latest", "blend", "ensemble", "rtc"])
def test_each_tick_executes_the_action_planned_for_it(merge):
    fps = 100.0
    policy = ReplayPolicy(wave_actions(400, fps=fps), fps, chunk_size=20)
    loop = ControlLoop(Recorder(), PolicyWorker(policy), policy.spec, LoopConfig(fps=fps, merge=merge))
    _run(loop, 1.0, chunks=3)
    loop.worker.close()
    ticks = [t for t, _ in loop.sent]
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)  # tick order, no repeats
    s = loop.stats.summary()
    assert s["chunks"] >= 3 and s["ticks_waiting_first_chunk"] >= 1
    executed, held, eased, previous = 0, 0, 0, Recorder().state  # the arm's pose before any chunk
    anchor, easing = previous, False
    for tick, goal in loop.sent:
        row = policy.actions[tick]
        if np.allclose(goal, row, atol=1e-5):
            executed += 1  # the replay's row for exactly this tick: chunks were aligned to ticks
            easing = False
        elif np.array_equal(goal, previous):
            held += 1  # before the first chunk or starved: the last goal again
            easing = False
        else:  # blend/rtc ease a chunk in from the held pose: between it and the plan, never beyond
            assert merge in ("blend", "rtc"), f"tick {tick}: unplanned goal"
            if not easing:  # a chunk landed on an empty queue: it eases in from the last goal sent
                anchor, easing = previous, True
            lo, hi = np.minimum(anchor, row) - 1e-4, np.maximum(anchor, row) + 1e-4
            assert np.all((lo <= goal) & (goal <= hi)), f"tick {tick}: goal outside hold..plan"
            eased += 1
        previous = goal
    assert executed >= 20 and held >= s["ticks_waiting_first_chunk"]


def test_killed_worker_process_holds_position_then_recovers(tmp_path):
    path = write_replay(tmp_path / "wave.npz", chunk_size=10, fps=50.0, frames=1000)
    policy = open_policy(str(path), transport="process", expect=expect(fps=50.0))
    policy_actions = wave_actions(1000, fps=50.0)
    policy.backoff_s = (0.4, 0.4)  # long enough to see the arm hold
    robot = Recorder()
    loop = ControlLoop(robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0, merge="blend"))
    loop.record_sent()
    loop.start()
    try:
        _wait_for(lambda: loop.stats.chunks >= 3)
        chunks_before = loop.stats.chunks
        os.kill(policy._link.proc.pid, signal.SIGKILL)
        _wait_for(lambda: loop.stats.chunks > chunks_before + 2)  # a new process serves again
        assert loop.running
    finally:
        loop.stop()
        loop.worker.close()
    s = loop.stats.summary()
    assert chunks_before >= 1 and s["chunks"] > chunks_before  # inference came back after the respawn
    assert s["worker_failures"] >= 1 and s["ticks_starved"] >= 5
    moved = [(t, g) for t, g in loop.sent if not np.array_equal(g, Recorder().state)]
    ticks, goals = np.array([t for t, _ in moved]), np.array([g for _, g in moved])
    # per tick: a loaded machine may overrun a tick, and then one step spans two
    steps = np.abs(np.diff(goals, axis=0)).max(axis=1) / np.diff(ticks)
    # the longest run of identical goals is the hold while the worker was down
    still = np.concatenate([[0], (steps == 0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(still))
    assert (edges[1::2] - edges[::2]).max() >= 5
    # when inference returns, the replay's plan is far ahead of the held pose; blend eases into it:
    # the first goal after the hold lies between the held pose and the plan, at most halfway (the
    # eased rows weigh the plan (i + 1) / (n + 1): 1/2 when a late chunk leaves one row to ease)
    resume = edges[1::2][np.argmax(edges[1::2] - edges[::2])]  # goals[resume]: the last held goal
    held, first = goals[resume], goals[resume + 1]
    jump = policy_actions[ticks[resume + 1]] - held
    assert np.abs(jump).max() > 10
    covered = (first - held)[np.abs(jump) > 1] / jump[np.abs(jump) > 1]  # per joint, the same weight
    assert np.all(covered > 0) and np.all(covered <= 0.5 + 1e-3), covered


def test_bus_faults_do_not_stop_the_loop():
    policy = ReplayPolicy(wave_actions(), 50.0, 10)
    robot = Recorder(fault_rate=0.1)
    loop = _run(ControlLoop(robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0)), 1.0, chunks=2)
    loop.worker.close()
    s = loop.stats.summary()
    assert s["bus_errors"] >= 5 and s["ticks"] >= 30 and s["chunks"] >= 2
    assert len(robot.goals) >= 0.8 * (s["ticks"] - s["bus_errors"])  # the others were sent


def test_loop_refuses_configurations_it_cannot_honour():
    policy = ReplayPolicy(wave_actions(), 30.0, 10)
    worker = PolicyWorker(policy)
    with pytest.raises(EdgevlaError, match="--request-at"):
        ControlLoop(Recorder(), worker, policy.spec, LoopConfig(request_at=10))
    with pytest.raises(EdgevlaError, match="--fps"):
        ControlLoop(Recorder(), worker, policy.spec, LoopConfig(fps=0))
    worker.close()
    assert "half a chunk (50 actions at 30 fps = 833 ms)" in budget_warning(1200, 50, 30)


def test_non_finite_chunks_are_refused_and_the_arm_holds():
    policy = ReplayPolicy(wave_actions(), 50.0, 10)
    policy.actions[:] = np.nan  # a diverged model
    robot = Recorder()
    loop = _run(ControlLoop(robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0)), 0.5)
    loop.worker.close()
    s = loop.stats.summary()
    assert s["actions_rejected"] >= 10 and s["chunks"] == 0
    assert all(np.array_equal(g, Recorder().state) for g in robot.goals)
    assert "NaN" in loop.events.get_nowait()


def test_a_policy_that_raises_leaves_the_loop_holding():
    policy = ReplayPolicy(wave_actions(), 50.0, 10)
    policy.actions = None  # indexing it raises TypeError inside infer: a policy bug
    robot = Recorder()
    loop = _run(ControlLoop(robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0)), 0.5)
    loop.worker.close()
    assert loop.stats.worker_failures >= 2 and loop.stats.ticks >= 10
    assert all(np.array_equal(g, Recorder().state) for g in robot.goals)
