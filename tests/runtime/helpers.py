"""Shared builders for runtime tests: a real replay policy file and matching observations."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgevla.policy_io import CameraSpec, Expectation, PolicySpec
from edgevla.runtime.replay import ReplayPolicy

SPEC = PolicySpec(
    name="wire-test",
    cameras=(CameraSpec("front", 32, 48),),
    state_dim=6,
    action_dim=6,
    chunk_size=10,
    num_steps=10,
    max_action_dim=32,
    max_tokens=48,
    fps=30.0,
)


def observation(state_dim: int = 6, cameras: tuple[str, ...] = ("front",), seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {"observation.state": rng.standard_normal(state_dim).astype(np.float32), "task": "pick the cube"}
    for name in cameras:
        obs[f"observation.images.{name}"] = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    return obs


def wave_actions(frames: int = 300, joints: int = 6, fps: float = 30.0) -> np.ndarray:
    """A smooth, distinct motion per joint (normalised units, well inside +-100)."""
    t = np.arange(frames, dtype=np.float32)[:, None] / fps
    return (20 * np.sin(t * np.arange(1, joints + 1, dtype=np.float32) * 0.7)).astype(np.float32)


def write_replay(path: Path, chunk_size: int = 10, fps: float = 30.0, frames: int = 300) -> Path:
    ReplayPolicy(wave_actions(frames, fps=fps), fps, chunk_size, name="wave").save(path)
    return path


def expect(joints: int = 6, fps: float = 30.0, cameras: tuple[str, ...] = ()) -> Expectation:
    return Expectation(state_dim=joints, action_dim=joints, cameras=cameras, fps=fps)


def start_serve(
    policy: Path, *args: str, log: Path, open_files: int | None = None
) -> tuple[subprocess.Popen, str]:
    """`edgevla serve` as a user starts it, in a child process on a free port; returns it and its
    ws:// URL. Its log goes to `log`. `open_files` sets the child's open-file limit (soft and hard)
    as a small `ulimit -n` would."""

    def limit_open_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    proc = subprocess.Popen(
        [sys.executable, "-m", "edgevla", "serve", "--policy", str(policy), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        preexec_fn=limit_open_files if open_files else None,
    )
    line = proc.stdout.readline()
    match = re.search(r"on (ws://127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no address in {line!r}: {log.read_text()}")
    return proc, match.group(1)
