"""A synthetic reaching dataset written by edgevla's own dataset writer, for tests and benches.

Each episode moves the joints smoothly from a random start toward a random goal; the action is
the next state (what a position-controlled arm is commanded); cameras are synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevla.cameras.synthetic import SyntheticCamera
from edgevla.dataset import DatasetWriter, VideoConfig
from edgevla.dataset.format import joint_feature, video_feature
from edgevla.policy_io import ACTION_KEY, STATE_KEY, image_key

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
HEIGHT, WIDTH, FPS = 48, 64, 30


def features(cameras: tuple[str, ...], height: int = HEIGHT, width: int = WIDTH) -> dict:
    out = {STATE_KEY: joint_feature(JOINTS), ACTION_KEY: joint_feature(JOINTS)}
    for camera in cameras:
        out[image_key(camera)] = video_feature(height, width)
    return out


def write_reaching_dataset(
    root: Path,
    episodes: int = 4,
    length: int = 24,
    cameras=("front",),
    height: int = HEIGHT,
    width: int = WIDTH,
) -> Path:
    rng = np.random.default_rng(0)
    writer = DatasetWriter.open(
        root,
        FPS,
        features(cameras, height, width),
        robot_type="so101_follower",
        video=VideoConfig(codec="libx264"),
    )
    camera = SyntheticCamera("x", width, height, FPS)
    counter = 0
    for _ in range(episodes):
        start, goal = rng.uniform(-40, 40, 6), rng.uniform(-40, 40, 6)
        states = [start + (goal - start) * (1 - np.exp(-k / 6)) for k in range(length + 1)]
        for k in range(length):
            frame = {
                STATE_KEY: states[k].astype(np.float32),
                ACTION_KEY: states[k + 1].astype(np.float32),
            }
            for name in cameras:
                frame[image_key(name)] = camera.image(counter)
            writer.add_frame(frame, "reach the goal")
            counter += 1
        writer.save_episode()
    writer.close()
    return root
