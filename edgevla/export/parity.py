"""Two policies on the same observations and noise: how far apart their actions are (`edgevla check`).

Errors are reported per action dim in the policy's action units and, for joints, in degrees.
Until a robot calibration is given, degrees assume lerobot's default RANGE_M100_100 joint units
over the full 4096-count turn: 200 units span 4095 counts = 360 degrees, so 1 unit = 1.8 degrees
(an upper bound: a calibrated joint's range is narrower, so its real degree error is smaller).
Dims given as grippers are RANGE_0_100 (percent of opening) and get no degree figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.runtime.policy import Policy

DEGREES_PER_UNIT = {"range_m100_100": 360.0 / 200.0, "degrees": 1.0}


@dataclass
class DimError:
    dim: int
    max_abs: float
    mean_abs: float
    cosine: float
    mean_abs_degrees: float | None  # None for grippers
    max_abs_degrees: float | None


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 1.0


def compare(
    reference: Policy,
    candidate: Policy,
    observations: Iterable[dict],
    seed: int = 0,
    joint_units: str = "range_m100_100",
    gripper_dims: tuple[int, ...] = (),
) -> tuple[list[DimError], int]:
    """Per-dim errors of `candidate` against `reference` over all chunks; returns (errors, chunks)."""
    if joint_units not in DEGREES_PER_UNIT:
        raise EdgevlaError(f"unknown joint units '{joint_units}': use {' or '.join(DEGREES_PER_UNIT)}")
    spec_a, spec_b = reference.spec, candidate.spec
    if (spec_a.chunk_size, spec_a.action_dim, spec_a.max_action_dim) != (
        spec_b.chunk_size,
        spec_b.action_dim,
        spec_b.max_action_dim,
    ):
        raise EdgevlaError(
            "the two policies have different chunk/action shapes: was the artifact exported from this checkpoint?"
        )
    rng = np.random.default_rng(seed)
    expected, got = [], []
    for obs in observations:
        noise = rng.standard_normal((spec_a.chunk_size, spec_a.max_action_dim), dtype=np.float32)
        expected.append(reference.infer(obs, noise=noise))
        got.append(candidate.infer(obs, noise=noise))
    if not expected:
        raise EdgevlaError("no observations to compare on")
    a = np.concatenate(expected).astype(np.float64)
    b = np.concatenate(got).astype(np.float64)
    scale = DEGREES_PER_UNIT[joint_units]
    errors = []
    for dim in range(a.shape[1]):
        diff = np.abs(a[:, dim] - b[:, dim])
        joint = dim not in gripper_dims
        errors.append(
            DimError(
                dim=dim,
                max_abs=float(diff.max()),
                mean_abs=float(diff.mean()),
                cosine=cosine(a[:, dim], b[:, dim]),
                mean_abs_degrees=float(diff.mean() * scale) if joint else None,
                max_abs_degrees=float(diff.max() * scale) if joint else None,
            )
        )
    return errors, len(expected)
