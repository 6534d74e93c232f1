"""A policy driving a robot: the robot, its cameras, the policy opened to fit them, the worker
that runs it and the control loops that move the arm, wired in one place.

`edgevla run` hosts a policy on a real (or virtual-firmware) arm with `control`; the evaluation
harness (`eval`, `demo`, `bench sim`) on the simulated follower, one loop per episode. What the
policy must fit comes from the robot: its definition's joints, the cameras opened, the loop's rate.
With `LoopConfig.dual` the policy is opened as the dual system (`open_systems`) and served by a
`DualWorker`: System 2 at its own pace on the cameras, System 1 for every chunk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from edgevla.cameras import CameraReader, open_cameras, parse_camera_spec
from edgevla.drivers.interface import RobotIO
from edgevla.hosting.sources import is_remote
from edgevla.hosting.transports import open_policy, open_systems
from edgevla.policy_io import Expectation, Policy
from edgevla.runtime.dual import LocalSystems, Systems
from edgevla.runtime.dual_worker import DualWorker
from edgevla.runtime.loop import ControlLoop, LoopConfig
from edgevla.runtime.workers import PolicyWorker


@dataclass(frozen=True)
class PolicyChoice:
    """A policy as a command names it: `--policy`, `--worker`, `--token`, `--jpeg`, `--worker-threads`."""

    source: str
    worker: str | None = None  # thread, process or remote; None: remote for ws://, else process
    token: str | None = None
    jpeg: bool = False
    threads: int | None = None  # compute threads of a worker process (None: all cores but one)
    steps: int | None = None  # sampling steps of a flow or diffusion head (None: the policy's own)

    @property
    def transport(self) -> str:
        return self.worker or ("remote" if is_remote(self.source) else "process")


def open_for_robot(
    choice: PolicyChoice, joints: Sequence[str], cameras: Sequence[str], fps: float, dual: bool = False
) -> Policy | Systems:
    """The chosen policy on its transport, refused unless it takes and returns one value per
    joint of `joints` (the robot definition's), reads `cameras` and runs at `fps`; `dual`: its
    two systems (refused unless its prefix splits)."""
    expect = Expectation(state_dim=len(joints), action_dim=len(joints), cameras=tuple(cameras), fps=fps)
    return (open_systems if dual else open_policy)(
        choice.source,
        transport=choice.transport,
        expect=expect,
        token=choice.token,
        jpeg=choice.jpeg,
        threads=choice.threads,
        num_steps=choice.steps,
    )


class Control:
    """One policy worker driving one robot with its cameras, through one control loop at a time."""

    def __init__(
        self, robot: RobotIO, cameras: tuple[CameraReader, ...], policy: Policy | Systems, config: LoopConfig
    ):
        if config.dual is not None and isinstance(policy, Policy):
            policy = LocalSystems(policy)  # a policy object handed over as it is (refused unless it splits)
        self.robot, self.cameras, self.policy, self.config = robot, cameras, policy, config
        self.worker = DualWorker(policy, config.dual) if config.dual is not None else PolicyWorker(policy)
        self.loop: ControlLoop | None = None

    def start(self, task: str | None = None) -> ControlLoop:
        """A control loop on the robot, with `task` as the instruction when given (an episode's)."""
        config = self.config if task is None else replace(self.config, task=task)
        self.loop = ControlLoop(self.robot, self.worker, self.policy.spec, config, self.cameras).start()
        return self.loop

    def stop(self, drain_s: float = 30.0) -> None:
        """Stop the loop and let an inference it started end, so that chunk never reaches the next loop."""
        if self.loop is not None:
            self.loop.stop()
        deadline = time.monotonic() + drain_s
        while self.worker.busy and time.monotonic() < deadline:
            self.worker.poll()
            time.sleep(0.01)
        self.worker.poll()


@contextmanager
def control(
    robot: RobotIO, cameras: Sequence[str], policy: Policy | Systems | PolicyChoice, config: LoopConfig
) -> Iterator[Control]:
    """`robot` (connected by the caller) with the cameras of `cameras` (NAME=SOURCE) opened and the
    policy served by a worker; a PolicyChoice is opened to fit the robot, the cameras and
    `config.fps`. On exit the loop stops and the worker, the policy and the cameras close."""
    readers = tuple(open_cameras([parse_camera_spec(text) for text in cameras]))
    try:
        if isinstance(policy, PolicyChoice):
            names = [c.name for c in readers]
            policy = open_for_robot(policy, robot.joint_names, names, config.fps, config.dual is not None)
        hosted = Control(robot, readers, policy, config)
        try:
            yield hosted
        finally:
            if hosted.loop is not None:
                hosted.loop.stop()
            hosted.worker.close()  # closes the policy too
    finally:
        for camera in readers:
            camera.stop()
