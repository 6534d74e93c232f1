"""Small datasets written by edgevla's writer for the dataset tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevla.cameras.synthetic import SyntheticCamera
from edgevla.dataset import DatasetWriter, VideoConfig
from edgevla.dataset.format import joint_feature, video_feature

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_v30"
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
HEIGHT, WIDTH, FPS = 72, 96, 30


def features(cameras=("front",), state_dim=6) -> dict:
    out = {
        "observation.state": joint_feature(JOINTS[:state_dim]),
        "action": joint_feature(JOINTS[:state_dim]),
    }
    for camera in cameras:
        out[f"observation.images.{camera}"] = video_feature(HEIGHT, WIDTH)
    return out


def state_of(counter: int) -> np.ndarray:
    return np.array([np.sin(counter / 7 + j) * 40 for j in range(6)], np.float32)


def add_frames(writer: DatasetWriter, start: int, count: int, task: str, cameras=("front",)) -> None:
    """Frames whose state and drawn camera counter both encode the global counter."""
    camera = SyntheticCamera("x", WIDTH, HEIGHT, FPS)
    for counter in range(start, start + count):
        frame = {"observation.state": state_of(counter), "action": state_of(counter) + 1}
        for name in cameras:
            frame[f"observation.images.{name}"] = camera.image(counter)
        writer.add_frame(frame, task)


def write_dataset(
    root: Path, lengths=(12, 9), codec="libx264", cameras=("front",), tasks=("pick", "place"), **kwargs
) -> DatasetWriter:
    writer = DatasetWriter.open(
        root, FPS, features(cameras), robot_type="so101_follower", video=VideoConfig(codec=codec), **kwargs
    )
    counter = 0
    for episode, length in enumerate(lengths):
        add_frames(writer, counter, length, tasks[episode % len(tasks)], cameras)
        writer.save_episode({key: episode for key in kwargs.get("episode_metadata", {})})
        counter += length
    writer.close()
    return writer
