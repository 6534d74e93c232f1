"""The recording session: episodes of fixed-rate teleoperation frames, saved as they end.

Per frame: `observation.state` (follower, before the command), `observation.images.<cam>` (the
latest frame of each camera thread), `action` (the goal the follower's driver actually sent,
after its clamp), `leader.action` (the leader's raw command), and real times: `timing.tick`
(when the loop ran the frame) and `timing.camera.<cam>` (when the image was captured), both in
seconds since the episode started. `timestamp` stays frame_index / fps as LeRobotDataset
requires. Late and dropped frames are counted per episode in the episodes metadata, and so are
frames whose camera image had gone stale (a camera whose read blocks keeps handing out its last
image): the first is warned about at once, and a camera silent for `camera_timeout_s` stops the
recording, keeping the finished episodes and dropping the one it froze in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgevla.cameras import CameraReader
from edgevla.clock import Ticker
from edgevla.dataset import DatasetWriter, VideoConfig
from edgevla.dataset.format import joint_feature, video_feature
from edgevla.drivers.interface import RobotIO
from edgevla.policy_io import ACTION_KEY, STATE_KEY, image_key
from edgevla.printable import printable
from edgevla.record.keyboard import INTERRUPT, NEXT, RERECORD, STOP, KeyboardControls
from edgevla.record.teleop import Mirror

FROZEN = "frozen"  # a camera stopped delivering: stop, drop the unfinished episode
# An image older than this was not refreshed for several frames: the camera stalled. A live
# camera's latest image is at most a frame period old, a few on a loaded machine.
STALE_IMAGE_S = 0.25

# Extra episodes-metadata columns (lerobot ignores columns it does not know).
EPISODE_COUNTERS = {
    "recording/late_frames": "int64",  # frames whose tick started > half a period late
    "recording/dropped_frames": "int64",  # frame slots skipped because the loop fell behind
    "recording/repeated_camera_frames": "int64",  # camera images reused because no new one came
    "recording/frozen_camera_frames": "int64",  # ...of which the image was older than STALE_IMAGE_S
    "recording/max_lateness_ms": "float64",
}


@dataclass
class RecordConfig:
    dataset: Path
    task: str
    fps: int = 30
    episodes: int = 1  # the dataset holds this many episodes when done (counting resumed ones)
    episode_seconds: float = 30.0
    reset_seconds: float = 10.0
    resume: bool = False
    keyboard: bool = True
    video: VideoConfig = field(default_factory=VideoConfig)
    robot_type: str | None = None
    camera_timeout_s: float = 1.0  # a camera with no new image for this long stops the recording


@dataclass
class EpisodeReport:
    index: int
    frames: int
    late: int
    dropped: int
    repeated_camera_frames: int
    frozen_camera_frames: int
    max_lateness_ms: float
    handoff_ms: float  # loop time spent handing the episode to the saver


@dataclass
class RecordReport:
    episodes: list[EpisodeReport] = field(default_factory=list)
    save_ms: list[float] = field(default_factory=list)  # saver time until each episode was durable
    stopped_early: bool = False
    fault: str | None = None  # why the recording stopped itself (a frozen camera)


def dataset_features(joint_names: tuple[str, ...], cameras: list[CameraReader]) -> dict[str, dict]:
    features: dict[str, dict] = {
        STATE_KEY: joint_feature(joint_names),
        ACTION_KEY: joint_feature(joint_names),
        "leader.action": joint_feature(joint_names),
    }
    for camera in cameras:
        height, width = camera.wait_frame().image.shape[:2]
        features[image_key(camera.name)] = video_feature(height, width)
    features["timing.tick"] = {"dtype": "float64", "shape": [1], "names": None}
    for camera in cameras:
        features[f"timing.camera.{camera.name}"] = {"dtype": "float64", "shape": [1], "names": None}
    return features


def warn_on_stderr(line: str) -> None:
    """Where live recording warnings go by default: stderr, so stdout stays the command's output."""
    print(line, file=sys.stderr, flush=True)


class Recorder:
    """`episode_task(index)`, if given, is called before each episode (again for a re-recorded
    one): it sets up the episode (a simulator scene) and returns its instruction, replacing
    `config.task`. `on_saved(report)` hears of each episode handed to the saver.

    An episode is announced "saving" when it is handed to the saver and "saved" only once it is
    durable (its video, data and metadata fsynced), so a crash after that line keeps it."""

    def __init__(
        self,
        config: RecordConfig,
        leader: RobotIO,
        follower: RobotIO,
        cameras: list[CameraReader],
        log: Callable[[str], None] = print,
        warn: Callable[[str], None] = warn_on_stderr,
        episode_task: Callable[[int], str] | None = None,
        on_saved: Callable[[EpisodeReport], None] | None = None,
        interrupted: Callable[[], bool] = lambda: False,
    ):
        self.config, self.leader, self.follower, self.cameras = config, leader, follower, cameras
        self.log, self.warn = log, warn
        self.episode_task, self.on_saved, self.interrupted = episode_task, on_saved, interrupted
        self.writer = DatasetWriter.open(
            config.dataset,
            config.fps,
            dataset_features(follower.joint_names, cameras),
            robot_type=config.robot_type,
            video=config.video,
            resume=config.resume,
            episode_metadata=EPISODE_COUNTERS,
        )
        self.report = RecordReport()
        self.mirror = Mirror(leader, follower)
        self._announced = self.writer.durable_episodes  # episodes already said to be saved

    def run(self) -> RecordReport:
        """Record until the dataset holds `config.episodes` episodes or the user stops."""
        config, writer = self.config, self.writer
        if writer.repaired and writer.repaired.dropped:
            for index, why in writer.repaired.dropped.items():
                self.warn(f"warning: dropped damaged episode {index + 1} of {config.dataset}: {why}")
        if writer.num_episodes:
            self.log(f"resuming {config.dataset}: {writer.num_episodes} episode(s) already recorded")
        try:
            with KeyboardControls(config.keyboard) as keys:
                while writer.num_episodes < config.episodes:
                    number = writer.num_episodes + 1
                    task = self.episode_task(writer.num_episodes) if self.episode_task else config.task
                    self.log(f"recording episode {number}/{config.episodes}: {printable(task)}")
                    writer.prepare_episode()
                    outcome, report = self._record_episode(keys, task)
                    if outcome == FROZEN:
                        writer.discard_episode()
                        self.report.stopped_early = True
                        break
                    if outcome == RERECORD:
                        writer.discard_episode()
                        self.log(f"episode {number} dropped; recording it again after the reset")
                    elif outcome != INTERRUPT and report.frames:
                        handoff = time.monotonic()
                        writer.save_episode(self._counters(report))
                        report.handoff_ms = (time.monotonic() - handoff) * 1000
                        self.report.episodes.append(report)
                        self.log(self._describe(report))
                        if self.on_saved:
                            self.on_saved(report)
                    if outcome in (STOP, INTERRUPT):
                        self.report.stopped_early = writer.num_episodes < config.episodes
                        break
                    if writer.num_episodes < config.episodes and self._between_episodes(keys) == STOP:
                        self.report.stopped_early = True
                        break
        finally:
            self._finish()
        return self.report

    def _finish(self) -> None:
        # close() waits for every handed-off episode to be durable and drops an unsaved one.
        self.mirror.close()
        try:
            self.writer.close()
        finally:
            self._announce_saved()  # also those saved before a failure
            self.report.save_ms = list(self.writer.save_ms)

    def _announce_saved(self) -> None:
        """Say "saved" for each episode that became durable since the last call."""
        while self._announced < self.writer.durable_episodes:
            self._announced += 1
            self.log(f"episode {self._announced} saved")

    def _record_episode(self, keys: KeyboardControls, task: str) -> tuple[str | None, EpisodeReport]:
        config, writer = self.config, self.writer
        ticker = Ticker(config.fps)
        report = EpisodeReport(writer.num_episodes, 0, 0, 0, 0, 0, 0.0, 0.0)
        last_seq = {camera.name: -1 for camera in self.cameras}
        frames_wanted = round(config.episode_seconds * config.fps)
        last_warning = 0.0
        while True:
            tick = ticker.wait()
            if tick.slot >= frames_wanted:  # slots skipped just before the end still count as dropped
                report.dropped += min(tick.dropped, max(0, frames_wanted - (tick.slot - tick.dropped)))
                return None, report
            event = self._poll(keys)
            if event in (NEXT, STOP, RERECORD, INTERRUPT):
                return event, report
            # Images first: each camera thread already holds its newest frame, so this is instant
            # and the image is never newer than the joint state read next.
            frame = {"timing.tick": tick.started - ticker.start}
            stale = []
            for camera in self.cameras:
                latest = camera.latest()
                frame[image_key(camera.name)] = latest.image
                frame[f"timing.camera.{camera.name}"] = latest.capture_time - ticker.start
                report.repeated_camera_frames += int(latest.seq == last_seq[camera.name])
                last_seq[camera.name] = latest.seq
                age = tick.started - latest.capture_time
                if age > STALE_IMAGE_S:
                    stale.append(f"'{camera.name}' ({age:.2f} s)")
                if age > config.camera_timeout_s:
                    self.report.fault = (
                        f"camera '{camera.name}' gave no new image for {age:.1f} s (frozen or unplugged): "
                        f"recording stopped, episode {report.index + 1} dropped"
                    )
                    return FROZEN, report
            if stale:
                report.frozen_camera_frames += 1
                if report.frozen_camera_frames == 1 or tick.started - last_warning > 1.0:
                    last_warning = tick.started
                    self.warn(
                        f"warning: no new image from camera {', '.join(stale)}: recording its last image "
                        f"again ({report.frozen_camera_frames} frame(s) so far in this episode; the "
                        f"recording stops at {config.camera_timeout_s:g} s)"
                    )
            step = self.mirror.step()
            frame |= {STATE_KEY: step.state, ACTION_KEY: step.sent, "leader.action": step.command}
            writer.add_frame(frame, task)
            report.frames += 1
            report.dropped += tick.dropped
            report.late += int(ticker.is_late(tick))
            report.max_lateness_ms = max(report.max_lateness_ms, tick.lateness * 1000)
            if tick.started - last_warning > 1.0:
                if tick.dropped or ticker.is_late(tick):
                    last_warning = tick.started
                    self.warn(
                        f"warning: the loop cannot hold {config.fps} fps: {report.late} late, "
                        f"{report.dropped} dropped frame(s) so far in this episode "
                        f"(encoder backlog {writer.encoder_backlog} frames)"
                    )
                elif writer.encoder_backlog > 2 * config.fps:  # frames pile up in memory
                    last_warning = tick.started
                    self.warn(
                        f"warning: video encoding falls behind ({writer.encoder_backlog} frames queued); "
                        "use --vcodec libx264 or smaller camera images"
                    )

    def _poll(self, keys: KeyboardControls) -> str | None:
        return INTERRUPT if self.interrupted() else keys.poll()

    def _between_episodes(self, keys: KeyboardControls) -> str | None:
        """The reset period: the follower keeps mirroring (not recorded) for `reset_seconds`
        (NEXT ends it early) and in any case until the previous episode is durable. Saving
        (the AV1 encoder flush holds the GIL for tens of ms) and opening the next episode's
        encoders thus never compete with recorded frames."""
        config, writer = self.config, self.writer
        if config.reset_seconds > 0:
            self.log(f"reset the scene: {config.reset_seconds:g} s")
        ticker, skipped = Ticker(config.fps), False
        while writer.saves_pending or not (
            skipped or time.monotonic() - ticker.start >= config.reset_seconds
        ):
            ticker.wait()
            self._announce_saved()
            event = self._poll(keys)
            if event in (STOP, INTERRUPT):
                return STOP
            skipped = skipped or event == NEXT
            self.mirror.step()
        self._announce_saved()
        writer.prepare_episode()
        return None

    @staticmethod
    def _counters(report: EpisodeReport) -> dict[str, float]:
        return {
            "recording/late_frames": report.late,
            "recording/dropped_frames": report.dropped,
            "recording/repeated_camera_frames": report.repeated_camera_frames,
            "recording/frozen_camera_frames": report.frozen_camera_frames,
            "recording/max_lateness_ms": round(report.max_lateness_ms, 3),
        }

    @staticmethod
    def _describe(report: EpisodeReport) -> str:
        return (
            f"episode {report.index + 1} recorded, saving: {report.frames} frames, {report.late} late, "
            f"{report.dropped} dropped, {report.repeated_camera_frames} repeated camera frames "
            f"(hand-off {report.handoff_ms:.1f} ms)"
        )
