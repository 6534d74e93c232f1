"""Observations to calibrate int8-static scales and to compare backends (`edgevla check`).

A source is either a recorded LeRobotDataset v3.0 directory (frames drawn evenly across the
whole dataset, decoded from its videos) or a directory of observation .npz files in the
`edgevla predict` format (observation.state, observation.images.<camera>, task).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import IMAGE_PREFIX, STATE_KEY, TASK_KEY
from edgevla.runtime.npz import read_npz


def read_observation(path: Path) -> dict:
    """One observation .npz without pickle."""
    return read_npz(path)


def dataset_observations(root: Path, limit: int) -> Iterator[dict]:
    from edgevla.dataset import DatasetReader

    reader = DatasetReader(root)
    if len(reader) == 0:
        raise EdgevlaError(f"dataset {root} has no frames to calibrate with")
    for index in np.linspace(0, len(reader) - 1, num=min(limit, len(reader))).astype(int):
        frame = reader[int(index)]
        obs = {key: frame[key] for key in frame if key.startswith(IMAGE_PREFIX)}
        obs[STATE_KEY] = np.asarray(frame[STATE_KEY], dtype=np.float32)
        obs[TASK_KEY] = frame[TASK_KEY] or ""
        yield obs


def observations(source: str | Path, limit: int = 32) -> Iterator[dict]:
    """Up to `limit` observations from a dataset directory or a folder of .npz files."""
    root = Path(source)
    if (root / "meta" / "info.json").is_file():
        return dataset_observations(root, limit)
    if root.is_dir():
        files = sorted(root.glob("*.npz"))[:limit]
        if not files:
            raise EdgevlaError(
                f"{root} holds no observation .npz files and is not a LeRobotDataset (meta/info.json)"
            )
        return (read_observation(path) for path in files)
    if root.is_file() and root.suffix == ".npz":
        return iter([read_observation(root)])
    raise EdgevlaError(f"calibration source {root} is neither a dataset directory nor a folder of .npz files")
