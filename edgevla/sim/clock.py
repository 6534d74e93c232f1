"""The world's clock: a thread that, every tick at the world's fps, reads where the follower's
joints are, updates the world, renders the cameras and publishes them on the frame socket. It is
what makes the simulator run in real time for `sim serve`, `sim demos` and the evaluation harness.

Where the joints come from is pluggable (`follow`): the virtual servos of the firmware in a bus
session, or the scripted expert through the in-process servo model (`ExpertDriven`) when only the
pictures are wanted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgevla.cameras import CameraReader
from edgevla.clock import Ticker
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.frames import FrameServer
from edgevla.sim.world import SimWorld

T = TypeVar("T")


class ExpertDriven:
    """Follower = the expert's goals through the in-process servo model; episodes run back to back
    (each plays its plan, holds, and the next seed starts)."""

    def __init__(self, world: SimWorld, first_seed: int = 0):
        self.world, self.seed = world, first_seed
        self._start_episode()

    def _start_episode(self) -> None:
        self.expert = ScriptedExpert(self.world.kin, self.world.reset(self.seed))
        self.started = time.monotonic()

    def __call__(self) -> np.ndarray:
        t = time.monotonic() - self.started
        if t > self.expert.duration:
            self.seed += 1
            self._start_episode()
            t = 0.0
        self.world.step_servos(self.expert.goal(t))
        return self.world.angles


class WorldClock:
    """Renders `world` at its fps from `follow()` angles and publishes frames on `socket_path`."""

    def __init__(self, world: SimWorld, socket_path: Path, follow: Callable[[], np.ndarray]):
        self.world, self.follow, self.socket_path = world, follow, socket_path
        self.frames = FrameServer(socket_path)
        self.lock = threading.Lock()  # held while the world changes; take it to reset episodes
        self.ticks = 0
        self.on_frames: Callable[[dict[str, np.ndarray]], None] | None = None  # e.g. collect a GIF
        self.render_s = 0.0  # total time spent rendering, for the stats line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-render", daemon=True)

    def change_scene(self, change: Callable[[], T], cameras: Sequence[CameraReader]) -> T:
        """Run `change` (e.g. start an episode) with the world held still, then wait until every
        camera's newest frame shows the new scene, so an episode's first frame is its own.

        After the change, a camera's first new frame may have been requested before it, and
        the second may be a render that was in flight during it; the third is rendered after."""
        with self.lock:
            result = change()
        for camera in cameras:
            latest = camera.latest()
            seq = latest.seq if latest is not None else -1
            for _ in range(3):
                seq = camera.wait_frame(seq).seq
        return result

    def camera_specs(self) -> list[str]:
        """`NAME=sim:NAME?socket=...` for each of the world's cameras: how a reader opens them."""
        return [f"{c}=sim:{c}?socket={self.socket_path}" for c in self.world.config.cameras]

    def start(self) -> WorldClock:
        self._tick()  # the first frames exist before anyone connects
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.frames.close()

    def __enter__(self) -> WorldClock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        started = time.monotonic()
        with self.lock:
            self.world.set_angles(self.follow())
            images = {cam: self.world.render(cam) for cam in self.world.config.cameras}
        for cam, image in images.items():
            self.frames.publish(cam, image, started)
        if self.on_frames is not None:
            self.on_frames(images)
        self.ticks += 1
        self.render_s += time.monotonic() - started

    def _run(self) -> None:
        fps = self.world.config.fps
        # start() rendered the first frames; fell behind: the missed ticks are skipped, not burst
        ticker = Ticker(fps, start=time.monotonic() + 1.0 / fps, stop=self._stop)
        while not self._stop.is_set():
            ticker.wait()
            self._tick()
