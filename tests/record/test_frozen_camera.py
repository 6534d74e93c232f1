"""A camera whose read blocks (a hung USB camera) while recording: warned about at once, counted
in the episode's metadata, and past --camera-timeout the recording stops, keeping the finished
episodes. Real driver stack on the virtual firmware; the camera is the synthetic one, stalled."""

import re
import signal
import threading

import pytest

pytest.importorskip("edgevla.drivers.robot")

from edgevla.cameras import CameraReader  # noqa: E402
from edgevla.cameras.spec import SOURCES  # noqa: E402
from edgevla.cameras.synthetic import SyntheticCamera  # noqa: E402
from edgevla.cli import main  # noqa: E402
from edgevla.dataset import DatasetReader, VideoConfig  # noqa: E402
from edgevla.dataset.check import check  # noqa: E402
from edgevla.record.arms import open_arm_pair  # noqa: E402
from edgevla.record.recorder import RecordConfig, Recorder  # noqa: E402
from edgevla.record.virtual_arms import virtual_arm_pair  # noqa: E402

FPS = 30
TASK = "stack \x1b[2Jthe \x1b[31mred\x1b[0m cubes"  # an escape that would clear the terminal


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    with virtual_arm_pair("so101", tmp_path_factory.mktemp("arms")) as ports:
        yield ports


class StallingCamera(SyntheticCamera):
    """The synthetic camera, whose read() blocks on demand: for a while, or until closed."""

    def __init__(self, name: str = "front", stall_after: int | None = None):
        super().__init__(name, 160, 120, FPS)
        self._plan: list | None = None if stall_after is None else [stall_after, None]
        self._closed = threading.Event()

    @classmethod
    def from_spec(cls, spec):  # `--camera front=stalling`: one image, then a read that never returns
        return cls(spec.name, stall_after=1)

    def stall(self, after_frames: int, seconds: float | None) -> None:
        self._plan = [after_frames, seconds]

    def read(self):
        if self._plan is not None:
            if self._plan[0] == 0:
                seconds, self._plan = self._plan[1], None
                self._closed.wait(seconds)  # None: until the reader is stopped
            else:
                self._plan[0] -= 1
        return super().read()

    def close(self) -> None:
        self._closed.set()


def test_a_stalled_camera_is_warned_counted_then_stops_the_recording(arms, tmp_path, capsys):
    root = tmp_path / "ds"
    camera = StallingCamera()
    plan = {0: (10, 0.5), 1: (10, None)}  # episode 1: a 0.5 s stall; episode 2: it hangs for good

    def episode_task(index: int) -> str:
        camera.stall(*plan[index])
        return TASK

    config = RecordConfig(
        root, TASK, fps=FPS, episodes=3, episode_seconds=1.5, reset_seconds=0.2, keyboard=False,
        video=VideoConfig(codec="libx264"), camera_timeout_s=0.8,
    )  # fmt: skip
    logs, warnings = [], []
    reader = CameraReader(camera).start()
    try:
        with open_arm_pair("so101", *arms) as (leader, follower):
            recorder = Recorder(
                config, leader, follower, [reader], log=logs.append, warn=warnings.append,
                episode_task=episode_task,
            )  # fmt: skip
            report = recorder.run()
    finally:
        reader.stop()
    assert (
        report.fault is not None and "camera 'front'" in report.fault and "episode 2 dropped" in report.fault
    )
    assert report.stopped_early and len(report.episodes) == 1
    stale = [w for w in warnings if "no new image from camera 'front'" in w]
    assert len(stale) >= 2, warnings  # in episode 1 at once, and again in episode 2 before the stop
    ds = DatasetReader(root)
    assert ds.num_episodes == 1 and check(root).ok  # the finished episode is kept, intact
    extra = ds.episodes[0].extra
    assert 3 <= extra["recording/frozen_camera_frames"] <= extra["recording/repeated_camera_frames"]
    # the task is stored as given, printed escaped
    assert ds.tasks == [TASK]
    assert "recording episode 1/3: stack \\x1b[2Jthe \\x1b[31mred\\x1b[0m cubes" in logs
    assert not any("\x1b" in line for line in logs + warnings)
    assert main(["dataset", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tasks: stack \\x1b[2Jthe" in out and "\x1b" not in out


def test_record_command_stops_on_a_frozen_camera_with_one_line_and_exit_2(
    arms, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(SOURCES, "stalling", f"{__name__}:StallingCamera")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = main([
            "record", "--robot", "so101", "--leader-port", arms[0], "--follower-port", arms[1],
            "--camera", "front=stalling", "--dataset", str(tmp_path / "ds"), "--task", "stack",
            "--episodes", "2", "--episode-seconds", "3", "--camera-timeout", "0.5", "--no-keyboard",
            "--vcodec", "libx264",
        ])  # fmt: skip
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert re.match(r"edgevla record: error: camera 'front' gave no new image for \d+\.\d s", err[-1]), err
    assert "episode 1 dropped" in err[-1] and "the 0 episode(s) finished before it are saved" in err[-1]
