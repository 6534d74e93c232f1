import io
import itertools
import sys
import threading

import numpy as np
import pytest

from edgevla.cameras import (
    CameraError,
    CameraReader,
    CameraSource,
    make_source,
    open_cameras,
    parse_camera_spec,
)
from edgevla.cameras.synthetic import SyntheticCamera, decode_counter, draw_counter
from edgevla.errors import EdgevlaError
from edgevla.paths import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"


def test_spec_defaults_options_and_shorthands():
    spec = parse_camera_spec("front=synthetic", width=320, height=240, fps=15)
    assert (spec.name, spec.kind, spec.width, spec.height, spec.fps) == ("front", "synthetic", 320, 240, 15.0)
    spec = parse_camera_spec("wrist=opencv:/dev/video2?width=1280&height=720&fps=60")
    assert (spec.kind, spec.target, spec.width, spec.height, spec.fps) == (
        "opencv",
        "/dev/video2",
        1280,
        720,
        60.0,
    )
    assert parse_camera_spec("top=0").kind == "opencv"
    assert parse_camera_spec("top=/dev/video0").target == "/dev/video0"


@pytest.mark.parametrize(
    "text, message",
    [
        ("front", "expected NAME=SOURCE"),
        ("fr-ont=synthetic", "expected NAME=SOURCE"),
        ("front=", "expected NAME=SOURCE"),
        ("front=kinect:1", "unknown source 'kinect'"),
        ("front=synthetic?width=big", "width='big' is not a number"),
        ("front=synthetic?fps=0", "must be positive"),
    ],
)
def test_bad_specs_are_one_clear_error(text, message):
    with pytest.raises(EdgevlaError, match=message):
        parse_camera_spec(text)


@pytest.mark.parametrize("counter", [0, 1, 2, 1234, 40961, 65535])
def test_counter_bar_code_round_trips(counter):
    image = np.zeros((48, 64, 3), np.uint8)
    draw_counter(image, counter)
    assert decode_counter(image) == counter


def test_decode_rejects_images_without_a_code():
    with pytest.raises(ValueError):
        decode_counter(np.full((48, 64, 3), 128, np.uint8))


def test_counter_survives_lossy_h264():
    av = pytest.importorskip("av")
    camera = SyntheticCamera("front", width=160, height=120, fps=30)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "35"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for n in range(40):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(camera.image(n * 7), format="rgb24")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = [decode_counter(frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    assert decoded == [n * 7 for n in range(40)]


def test_reader_keeps_latest_frame_in_order():
    spec = parse_camera_spec("front=synthetic?width=96&height=72&fps=200")
    (reader,) = open_cameras([spec])
    try:
        seen = []
        frame = reader.wait_frame()
        for _ in range(10):
            frame = reader.wait_frame(after_seq=frame.seq)
            seen.append((frame.seq, decode_counter(frame.image), frame.capture_time))
        assert frame.image.shape == (72, 96, 3) and frame.image.dtype == np.uint8
        assert all(a[0] < b[0] and a[1] < b[1] and a[2] <= b[2] for a, b in itertools.pairwise(seen))
        assert reader.latest().seq >= seen[-1][0]
    finally:
        reader.stop()


class _FailingSource(CameraSource):
    name, width, height, fps = "broken", 8, 8, 30.0

    def __init__(self, fail_open=False):
        self.fail_open, self.closed = fail_open, False
        self.release = threading.Event()

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def open(self):
        if self.fail_open:
            raise CameraError("camera 'broken': cannot open")

    def read(self):
        self.release.wait(5)
        raise OSError("USB device disconnected")

    def close(self):
        self.closed = True


def test_a_camera_that_dies_is_reported_to_the_loop():
    source = _FailingSource()
    reader = CameraReader(source).start()
    assert reader.latest() is None
    source.release.set()
    with pytest.raises(
        CameraError, match="camera 'broken' stopped delivering frames: USB device disconnected"
    ):
        reader.wait_frame(timeout=2)
    reader.stop()
    assert source.closed


def test_wait_frame_times_out_with_a_clear_message():
    source = _FailingSource()
    reader = CameraReader(source).start()
    with pytest.raises(CameraError, match="delivered no frame within 0.1 s"):
        reader.wait_frame(timeout=0.1)
    source.release.set()
    reader.stop()


def test_open_failure_stops_cameras_already_started(monkeypatch):
    started = []
    original = CameraReader.start

    def start(self):
        started.append(self)
        return original(self)

    monkeypatch.setattr(CameraReader, "start", start)
    good = parse_camera_spec("front=synthetic?width=64&height=48")
    with pytest.raises(EdgevlaError, match="cannot open OpenCV device|need OpenCV"):
        open_cameras([good, parse_camera_spec("wrist=/dev/video-does-not-exist")])
    assert started[0]._stop.is_set()


def test_missing_opencv_names_the_extra_that_installs_it(monkeypatch):
    import tomllib

    monkeypatch.setitem(sys.modules, "cv2", None)
    reader = CameraReader(make_source(parse_camera_spec("wrist=0")))
    with pytest.raises(CameraError, match=r"pip install 'edgevla\[cameras\]'"):
        reader.start()
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("opencv-python-headless") for req in extras["cameras"])


def test_duplicate_camera_names_are_refused():
    spec = parse_camera_spec("front=synthetic?width=64&height=48")
    with pytest.raises(CameraError, match="unique"):
        open_cameras([spec, spec])


def test_cameras_import_without_torch():
    import subprocess

    code = "import sys; sys.modules['torch'] = None; import edgevla.cameras.synthetic, edgevla.cameras.opencv"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
