"""ReplayPolicy: plays a saved action trajectory back as chunks, in real time.

Useful to dry-run a robot setup (wiring, calibration, limits, the async loop, a remote server)
with known motions before any model is involved. The file is an .npz with
    actions     float32 (T, action_dim)   robot units, one row per frame
    fps         float                     rate the trajectory was recorded at
    chunk_size  int                       rows per returned chunk (optional, default 50)
    name        str                       (optional, default: the file name)
The chunk for an observation taken at time t (its "timestamp", seconds since the run started)
starts at frame round(t * fps) and runs on, so chunks line up exactly with the control ticks
whatever the inference latency; past the end the last action is held. An observation without a
timestamp is placed by the wall clock since the first call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import TIMESTAMP_KEY, Guidance, Observation, Policy, PolicySpec
from edgevla.runtime.npz import read_npz


class ReplayPolicy(Policy):
    def __init__(
        self,
        actions: np.ndarray,
        fps: float,
        chunk_size: int = 50,
        name: str = "replay",
        clock: Callable[[], float] = time.monotonic,
    ):
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or len(actions) == 0 or not np.isfinite(actions).all():
            raise EdgevlaError(f"replay '{name}': actions must be a finite (frames, joints) array")
        if not fps > 0 or chunk_size < 1:
            raise EdgevlaError(f"replay '{name}': fps must be > 0 and chunk_size >= 1")
        self.actions, self.clock = actions, clock
        self._start: float | None = None
        dim = actions.shape[1]
        self.spec = PolicySpec(
            name=name,
            cameras=(),
            state_dim=dim,
            action_dim=dim,
            chunk_size=int(chunk_size),
            num_steps=0,
            max_action_dim=dim,
            max_tokens=0,
            fps=float(fps),
        )

    @classmethod
    def load(cls, path: str | Path, chunk_size: int | None = None) -> ReplayPolicy:
        path = Path(path)
        data = read_npz(path, "replay .npz")
        if "actions" not in data or "fps" not in data:
            raise EdgevlaError(f"{path}: a replay file needs 'actions' and 'fps' arrays")
        try:
            actions, fps = data["actions"], float(data["fps"])
            size = int(data["chunk_size"]) if "chunk_size" in data else 50
        except (TypeError, ValueError) as err:
            raise EdgevlaError(f"{path}: not a readable replay .npz ({err})") from None
        name = str(data["name"]) if "name" in data else path.stem
        return cls(actions, fps, chunk_size or size, name)

    def save(self, path: str | Path) -> None:
        s = self.spec
        np.savez(path, actions=self.actions, fps=s.fps, chunk_size=s.chunk_size, name=s.name)

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        t = obs.get(TIMESTAMP_KEY)
        if t is None:
            now = self.clock()
            if self._start is None:
                self._start = now
            t = now - self._start
        first = round(float(t) * self.spec.fps)
        rows = np.minimum(np.arange(first, first + self.spec.chunk_size), len(self.actions) - 1)
        return self.actions[rows].copy()
