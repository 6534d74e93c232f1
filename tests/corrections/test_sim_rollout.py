"""Correction rounds on the virtual servos: the scripted person takes over from a policy that
stalls, through the leader arm, and each attempt is one episode with its interventions flagged."""

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from edgevla.corrections.sim import SimRolloutConfig, sim_rollout
from edgevla.dataset import DatasetReader
from edgevla.dataset.check import check
from edgevla.dataset.corrections import INTERVENTION_KEY, PHASE_KEY, POLICY_ACTION_KEY, SUCCESS_COLUMN
from edgevla.policy_io import ACTION_KEY, STATE_KEY, Policy, PolicySpec
from edgevla.sim import joints
from edgevla.sim.world import SimConfig, SimWorld

DEMO_POLICY = "edgevla/assets/small-reach/onnx-int8"
TWO_TICKS = 2  # the most control ticks that can land between two servo samples (see below)


class Stalls(Policy):
    """A policy that never moves the arm: every chunk holds the state it was given. The person
    must take over, and again after each hand back, until the cube is touched."""

    def __init__(self, chunk: int = 20):
        self.spec = PolicySpec(
            name="stalls",
            cameras=(),
            state_dim=6,
            action_dim=6,
            chunk_size=chunk,
            num_steps=0,
            max_action_dim=6,
            max_tokens=0,
            fps=30.0,
        )

    def infer(self, obs, noise=None, guidance=None):
        return np.repeat(np.asarray(obs[STATE_KEY], dtype=np.float32)[None], self.spec.chunk_size, axis=0)


class ServoTrace:
    """Samples both arms' virtual servos (torque, goal, encoder) every few ms, in normalised units."""

    def __init__(self, world: SimWorld):
        self.world, self.samples, self._stop = world, [], threading.Event()

    def start(self, served) -> None:
        self.served = served
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _units(self, robot, counts) -> np.ndarray:
        return self.world.to_normalized(joints.counts_to_angles(self.world.kin, robot, np.array(counts)))

    def _run(self) -> None:
        leader, follower = self.served.leader, self.served.follower
        while not self._stop.is_set():
            row = {}
            for name, served in (("leader", leader), ("follower", follower)):
                with served.bus.inspect() as bus:
                    torque = [s.torque for s in bus.servos]
                    goal = [s.goal_actual() for s in bus.servos]
                    actual = [s.actual for s in bus.servos]
                row[name] = (
                    all(torque),
                    any(torque),
                    self._units(served.robot, goal),
                    self._units(served.robot, actual),
                )
            self.samples.append(row)
            time.sleep(0.004)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of true values."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


@pytest.fixture(scope="module")
def round_with_corrections(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollout") / "ds"
    world = SimWorld(SimConfig.square("reach", 30, ("front",), 64))
    trace = ServoTrace(world)
    config = SimRolloutConfig(episodes=1, episode_seconds=20, size=64, codec="libx264")
    try:
        report = sim_rollout(Stalls(), config, root, log=lambda _line: None, world=world, watch=trace.start)
    finally:
        trace.stop()
    return root, report, trace.samples


def test_an_attempt_with_several_interventions_is_one_episode_with_the_right_flags(round_with_corrections):
    root, report, _ = round_with_corrections
    ds = DatasetReader(root)
    assert ds.num_episodes == 1 and len(report.attempts) == 1
    attempt = report.attempts[0]
    phase = ds.columns[PHASE_KEY].astype(int)
    flag = ds.columns[INTERVENTION_KEY]
    runs = _runs(flag > 0.5)
    assert attempt.interventions >= 2 and len(runs) == attempt.interventions
    assert np.array_equal(flag > 0.5, phase > 0)  # the person had the arm: handing over or moving it
    extra = ds.episodes[0].extra
    assert extra[SUCCESS_COLUMN] == 1 and extra["corrections/interventions"] == attempt.interventions
    assert extra["corrections/intervention_frames"] == int((phase == 2).sum()) > 0
    action, proposed = ds.columns[ACTION_KEY], ds.columns[POLICY_ACTION_KEY]
    for start, end in runs:
        assert phase[start] in (1, 2) and set(phase[start:end]) <= {1, 2}
        assert (phase[start:end] == 2).any()  # every takeover reached the person's hand
    # while the policy has the arm, what it proposed is what was sent (the tick of a hand back
    # sends the person's last goal instead, then the loop replans from there)
    after_hand_back = {end for _, end in runs}
    policy = [i for i in np.flatnonzero(phase == 0) if i not in after_hand_back]
    assert np.allclose(action[policy], proposed[policy], atol=1e-3)
    # the person moved the arm: the follower ends far from where the stalling policy held it
    assert np.abs(ds.columns[STATE_KEY][-1] - ds.columns[STATE_KEY][0]).max() > 5


def test_handover_drives_the_leader_to_the_follower_before_release_and_no_goal_jumps(round_with_corrections):
    _, report, samples = round_with_corrections
    leader_on = np.array([s["leader"][1] for s in samples])
    handovers = _runs(leader_on)
    assert len(handovers) >= 1  # the leader's torque went on, then off again
    # the first one drove the leader from where it lay to the follower; later ones find it close
    assert max(end - start for start, end in handovers) > 20
    for start, end in handovers:
        _, _, goal, present = samples[start]["leader"]
        # torque on where the leader was: its first goal is at most one speed-limited step away
        # from its present pose (90 units/s at 30 fps), never the follower's pose
        assert np.abs(goal - present).max() < 4.0
        # released only at the follower's pose
        before = samples[end - 1]
        assert np.abs(before["leader"][3] - before["follower"][3]).max() < 3.0
        # while driven the leader's goal moves in small steps (speed-limited, 3 units per tick).
        # The sampler is not in lockstep with the loop: a late tick followed by an on-time one
        # puts two steps between two samples, so a pair may hold two steps; a jump is many.
        goals = np.array([s["leader"][2] for s in samples[start:end]])
        assert len(goals) < 2 or np.abs(np.diff(goals, axis=0)).max() < TWO_TICKS * 3.0 + 1.0
    # from the first takeover on (before it the scene was set up: the arm placed at its start),
    # through every handover, correction and hand back, the follower's goal never jumps
    follower_goals = np.array([s["follower"][2] for s in samples[handovers[0][0] - 1 :]])
    assert np.abs(np.diff(follower_goals, axis=0)).max() < TWO_TICKS * 5.0


def test_sigkill_mid_attempt_keeps_the_finished_attempts(tmp_path):
    root = tmp_path / "ds"
    command = [
        sys.executable, "-m", "edgevla", "sim", "rollout", "--policy", DEMO_POLICY,
        "--dataset", str(root), "--episodes", "4", "--episode-seconds", "6", "--vcodec", "libx264",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("attempt 2/4"):
            break
    else:
        pytest.fail(f"the rollout ended early ({process.wait()}): {lines}")
    assert any(line.startswith("episode 1 saved") for line in lines)
    time.sleep(1.0)  # mid-attempt: frames queued, video half encoded
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    ds = DatasetReader(root)
    assert ds.num_episodes == 1 and ds.episodes[0].length > 0
    assert check(root).ok
    assert ds.episodes[0].extra[SUCCESS_COLUMN] in (0, 1)


def test_schema_is_lerobot_v30_with_lerobots_intervention_name(round_with_corrections):
    root, _, _ = round_with_corrections
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    features = info["features"]
    assert features[INTERVENTION_KEY] == {"dtype": "float32", "shape": [1], "names": ["is_intervention"]}
    assert features[POLICY_ACTION_KEY]["names"] == features[ACTION_KEY]["names"]
    data = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert str(data.field(INTERVENTION_KEY).type) == "float"
    assert data.field(POLICY_ACTION_KEY).type == data.field(ACTION_KEY).type  # as lerobot stores action
    episodes = pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet")
    assert str(episodes.field(SUCCESS_COLUMN).type) == "int64"
    stats = json.loads((root / "meta/stats.json").read_text())
    assert {"min", "max", "mean", "std", "count"} <= set(stats[INTERVENTION_KEY])
    assert check(root).ok


def test_dataset_info_counts_autonomous_and_corrected_frames(round_with_corrections):
    root, report, _ = round_with_corrections
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "dataset", "info", str(root), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    summary = json.loads(result.stdout)["corrections"]
    phase = DatasetReader(root).columns[PHASE_KEY].astype(int)
    assert summary["autonomous_frames"] == int((phase == 0).sum()) > 0
    assert summary["corrected_frames"] == int((phase == 2).sum()) == report.attempts[0].intervention_frames
    assert (summary["attempts"], summary["succeeded"]) == (1, 1)
    assert summary["interventions"] == report.attempts[0].interventions
