"""Correction rounds: a policy drives the follower, a person takes over with the leader when it
goes wrong, and each attempt is recorded whole as one LeRobotDataset v3.0 episode.

Per frame (one per control-loop tick): `observation.state`, `observation.images.<cam>`, `action`
(the goal the follower was sent, after the driver's clamp, whoever chose it),
`complementary_info.policy_action` (what the policy's runtime wanted to send that tick),
`complementary_info.is_intervention` (1.0 while the person has the arm: lerobot's HIL-SERL name),
`corrections.phase` (0 policy, 1 handover: the follower holds while the leader is driven to it,
2 person), and the real times `timing.tick`, `timing.camera.<cam>`. Per episode:
`corrections/success` (1, 0, or -1 when nobody said), `corrections/interventions`,
`corrections/intervention_frames`.

Saving is the recorder's: an episode is handed to the saver when the attempt ends and is durable
(fsynced) once "saved" is said, so a crash or SIGKILL keeps every finished attempt.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgevla.cameras import CameraReader
from edgevla.corrections.takeover import Leader, Phase, TakeoverArm, TakeoverConfig, Tick
from edgevla.dataset import DatasetWriter, VideoConfig
from edgevla.dataset.corrections import (
    CORRECTED_COLUMN,
    EPISODE_COLUMNS,
    INTERVENTION_KEY,
    INTERVENTIONS_COLUMN,
    PHASE_KEY,
    POLICY_ACTION_KEY,
    SUCCESS_COLUMN,
)
from edgevla.dataset.format import joint_feature, video_feature
from edgevla.drivers.interface import RobotIO
from edgevla.errors import EdgevlaError
from edgevla.hosting.control import Control, PolicyChoice, control
from edgevla.policy_io import ACTION_KEY, STATE_KEY, Policy, image_key
from edgevla.printable import printable
from edgevla.record.keyboard import NEXT, RERECORD, STOP, KeyboardControls
from edgevla.runtime.loop import LoopConfig

# Operator events (keys, a foot pedal typing a key, or the simulator's scripted person)
TOGGLE, TAKE_OVER, HAND_BACK = "toggle", "take_over", "hand_back"
SUCCESS, FAILURE = "success", "failure"  # end the attempt with its label
INTERRUPT = "interrupt"  # Ctrl-C or SIGTERM: drop the unfinished attempt, keep the rest
ROLLOUT_KEYS = {
    b" ": TOGGLE,
    b"t": TOGGLE,
    b"s": SUCCESS,
    b"f": FAILURE,
    b"\x1b[C": NEXT,
    b"n": NEXT,
    b"\x1b[D": RERECORD,
    b"r": RERECORD,
    b"\x1b": STOP,
    b"q": STOP,
}
KEYS_HELP = (
    "keys: space or t = take over / hand back, s = success, f = failure (both end the attempt), "
    "-> or n = end the attempt, <- or r = drop it and try again, esc or q = stop"
)


class Operator(Protocol):
    """Who watches the policy: `poll()` an event or None; `label()` success (1), failure (0) or
    unknown (-1) for an attempt that ended without one."""

    def poll(self) -> str | None: ...
    def label(self) -> int: ...


class KeyOperator:
    """The person at the terminal (raw tty keys, `edgevla.record.keyboard`)."""

    def __init__(self, keys: KeyboardControls, log: Callable[[str], None], wait_s: float = 60.0):
        self.keys, self.log, self.wait_s = keys, log, wait_s

    def poll(self) -> str | None:
        return self.keys.poll()

    def label(self) -> int:
        if not self.keys.enabled:
            return -1
        self.log("did the attempt succeed? s = success, f = failure")
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            event = self.keys.poll()
            if event in (SUCCESS, FAILURE):
                return int(event == SUCCESS)
            if event == STOP:
                break
            time.sleep(0.02)
        return -1


@dataclass
class RolloutConfig:
    dataset: Path
    task: str
    fps: int = 30
    episodes: int = 1  # the dataset holds this many episodes when done (counting resumed ones)
    episode_seconds: float = 30.0
    reset_seconds: float = 5.0
    resume: bool = False
    merge: str = "blend"
    video: VideoConfig = field(default_factory=VideoConfig)
    robot_type: str | None = None
    takeover: TakeoverConfig = field(default_factory=TakeoverConfig)


@dataclass
class Attempt:
    index: int
    task: str
    frames: int
    interventions: int
    intervention_frames: int
    success: int  # 1, 0, -1


@dataclass
class RolloutReport:
    attempts: list[Attempt] = field(default_factory=list)
    stopped_early: bool = False


def rollout_features(joint_names: Sequence[str], cameras: Sequence[CameraReader]) -> dict[str, dict]:
    features: dict[str, dict] = {
        STATE_KEY: joint_feature(joint_names),
        ACTION_KEY: joint_feature(joint_names),
        POLICY_ACTION_KEY: joint_feature(joint_names),
        INTERVENTION_KEY: {"dtype": "float32", "shape": [1], "names": ["is_intervention"]},
        PHASE_KEY: {"dtype": "int64", "shape": [1], "names": None},
    }
    for camera in cameras:
        height, width = camera.wait_frame().image.shape[:2]
        features[image_key(camera.name)] = video_feature(height, width)
    features["timing.tick"] = {"dtype": "float64", "shape": [1], "names": None}
    for camera in cameras:
        features[f"timing.camera.{camera.name}"] = {"dtype": "float64", "shape": [1], "names": None}
    return features


class Rollout:
    """Attempts until the dataset holds `config.episodes` episodes, the operator stops, or Ctrl-C.

    `episode_task(index, cameras)`, if given, sets up each attempt (a simulator scene) and returns
    its instruction; `on_saved(attempt)` hears of each attempt handed to the saver."""

    def __init__(
        self,
        config: RolloutConfig,
        follower: RobotIO,
        leader: Leader,
        cameras: Sequence[str],
        policy: Policy | PolicyChoice,
        operator: Operator,
        log: Callable[[str], None] = print,
        episode_task: Callable[[int, Sequence[CameraReader]], str] | None = None,
        on_saved: Callable[[Attempt], None] | None = None,
        interrupted: Callable[[], bool] = lambda: False,
    ):
        self.config, self.follower, self.leader = config, follower, leader
        self.cameras, self.policy, self.operator = cameras, policy, operator
        self.log, self.episode_task, self.on_saved, self.interrupted = (
            log,
            episode_task,
            on_saved,
            interrupted,
        )
        self.arm = TakeoverArm(follower, leader, config.fps, config.takeover)
        self.report = RolloutReport()
        self._announced = 0  # episodes said to be saved
        self._person_frames = 0  # of the attempt under way

    def run(self) -> RolloutReport:
        config = self.config
        loop_config = LoopConfig(fps=config.fps, task=config.task, merge=config.merge)
        try:
            with control(self.arm, self.cameras, self.policy, loop_config) as hosted:
                writer = DatasetWriter.open(
                    config.dataset,
                    config.fps,
                    rollout_features(self.arm.joint_names, hosted.cameras),
                    robot_type=config.robot_type,
                    video=config.video,
                    resume=config.resume,
                    episode_metadata=EPISODE_COLUMNS,
                )
                self._announced = writer.durable_episodes
                try:
                    self._attempts(hosted, writer)
                finally:
                    try:
                        writer.close()  # waits until every handed-off attempt is durable
                    finally:
                        self._announce_saved(writer)
        finally:
            self.arm.release()  # never leave the leader's torque on
        return self.report

    def _attempts(self, hosted: Control, writer: DatasetWriter) -> None:
        config = self.config
        if writer.num_episodes:
            self.log(f"resuming {config.dataset}: {writer.num_episodes} episode(s) already recorded")
        while writer.num_episodes < config.episodes:
            number = writer.num_episodes + 1
            task = (
                self.episode_task(writer.num_episodes, hosted.cameras) if self.episode_task else config.task
            )
            self.log(f"attempt {number}/{config.episodes}: {printable(task)}")
            writer.prepare_episode()
            outcome, label, frames = self._attempt(hosted, writer, task)
            if outcome in (RERECORD, INTERRUPT) or not frames:
                writer.discard_episode()
                if outcome == RERECORD:
                    self.log(f"attempt {number} dropped; trying again")
            else:
                if label is None:
                    label = self.operator.label()
                attempt = Attempt(
                    writer.num_episodes, task, frames, self.arm.interventions, self._person_frames, label
                )
                writer.save_episode(
                    {
                        SUCCESS_COLUMN: label,
                        INTERVENTIONS_COLUMN: attempt.interventions,
                        CORRECTED_COLUMN: attempt.intervention_frames,
                    }
                )
                self.report.attempts.append(attempt)
                outcome_text = {1: "success", 0: "failure", -1: "not labelled"}[label]
                self.log(
                    f"attempt {number} recorded, saving: {frames} frames, {attempt.interventions} "
                    f"intervention(s), {attempt.intervention_frames} corrected frames, {outcome_text}"
                )
                if self.on_saved:
                    self.on_saved(attempt)
            if outcome in (STOP, INTERRUPT):
                self.report.stopped_early = writer.num_episodes < config.episodes
                return
            if writer.num_episodes < config.episodes and self._between_attempts(writer) == STOP:
                self.report.stopped_early = True
                return

    def _attempt(
        self, hosted: Control, writer: DatasetWriter, task: str
    ) -> tuple[str | None, int | None, int]:
        """Run one attempt; returns (how it ended, its label if the operator gave one, frames)."""
        ticks: queue.SimpleQueue[tuple[Tick, dict]] = queue.SimpleQueue()
        started = time.monotonic()
        self._person_frames = 0

        def on_frame(tick: Tick) -> None:  # the control loop's thread: take the images, nothing slow
            images = {camera.name: camera.latest() for camera in hosted.cameras}
            ticks.put((tick, {"now": time.monotonic(), **images}))

        self.arm.reset()
        self.arm.on_frame = on_frame
        loop = hosted.start(task)
        self.arm.replan = loop.replan
        frames, outcome, label = 0, None, None
        try:
            while outcome is None:
                frames += self._write(ticks, writer, task, started, wait_s=0.5 / self.config.fps)
                event = INTERRUPT if self.interrupted() else self.operator.poll()
                if event == TOGGLE:
                    self.arm.toggle()
                elif event == TAKE_OVER:
                    self.arm.take_over()
                elif event == HAND_BACK:
                    self.arm.hand_back()
                elif event in (SUCCESS, FAILURE):
                    outcome, label = NEXT, int(event == SUCCESS)
                elif event in (NEXT, RERECORD, STOP, INTERRUPT):
                    outcome = event
                if time.monotonic() - started >= self.config.episode_seconds:
                    outcome = outcome or NEXT
                if not loop.running and outcome is None:
                    why = loop.fault.message if loop.fault is not None else "the control loop stopped"
                    raise EdgevlaError(f"attempt {writer.num_episodes + 1} stopped: {why}")
        finally:
            hosted.stop()
            self.arm.release()
        frames += self._write(ticks, writer, task, started, wait_s=0.0)
        return outcome, label, frames

    def _write(
        self, ticks: queue.SimpleQueue, writer: DatasetWriter, task: str, started: float, wait_s: float
    ) -> int:
        """Write the ticks the loop queued (waiting up to `wait_s` for the first); returns how many."""
        written = 0
        while True:
            try:
                tick, seen = ticks.get(timeout=wait_s) if wait_s and not written else ticks.get_nowait()
            except queue.Empty:
                return written
            frame = {
                STATE_KEY: tick.state,
                ACTION_KEY: tick.sent,
                POLICY_ACTION_KEY: tick.proposed,
                INTERVENTION_KEY: np.float32(tick.phase != Phase.POLICY),
                PHASE_KEY: np.int64(tick.phase),
                "timing.tick": seen["now"] - started,
            }
            for name, image in seen.items():
                if name != "now":
                    frame[image_key(name)] = image.image
                    frame[f"timing.camera.{name}"] = image.capture_time - started
            writer.add_frame(frame, task)
            self._person_frames += int(tick.phase == Phase.PERSON)
            written += 1

    def _between_attempts(self, writer: DatasetWriter) -> str | None:
        """Time for the scene to be reset (the follower holds; NEXT ends it early), and in any case
        until the last attempt is durable, so its saving never competes with recorded frames."""
        if self.config.reset_seconds > 0:
            self.log(f"reset the scene: {self.config.reset_seconds:g} s (n: start now)")
        deadline, skipped = time.monotonic() + self.config.reset_seconds, False
        while writer.saves_pending or not (skipped or time.monotonic() >= deadline):
            self._announce_saved(writer)
            event = INTERRUPT if self.interrupted() else self.operator.poll()
            if event in (STOP, INTERRUPT):
                return STOP
            skipped = skipped or event == NEXT
            time.sleep(0.02)
        self._announce_saved(writer)
        return None

    def _announce_saved(self, writer: DatasetWriter) -> None:
        """Say "saved" for each episode that became durable since the last call."""
        while self._announced < writer.durable_episodes:
            self._announced += 1
            self.log(f"episode {self._announced} saved")
