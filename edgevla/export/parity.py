"""Two policies on the same observations and noise: how far apart their actions are (`edgevla check`).

Errors are reported per action dim in the policy's action units and in degrees of the motor.
With a robot calibration the conversion is exact per joint (`degrees_per_unit`). Without one,
degrees assume lerobot's default RANGE_M100_100 joint units over the full 4096-count turn:
200 units span 4095 counts = 360 degrees, so 1 unit = 1.8 degrees (an upper bound: a calibrated
joint's range is narrower, so its real degree error is smaller); dims named as grippers
(RANGE_0_100, percent of opening) then get no degree figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import Policy

FULL_TURN_M100_DEGREES = 360.0 / 200.0  # degrees per RANGE_M100_100 unit over a full 0..4095 range


def degrees_per_unit(table) -> np.ndarray:
    """Degrees of motor rotation per normalised action unit, per joint, from a calibration
    (`edgevla.drivers.calibration.NormTable`): DEGREES 1, RANGE_M100_100 span/200, RANGE_0_100 span/100."""
    span_degrees = (table.range_max - table.range_min) * 360.0 / table.max_res
    return np.select(
        [table.modes == 0, table.modes == 1],
        [np.ones_like(span_degrees), span_degrees / 200.0],
        span_degrees / 100.0,
    )


def assumed_degrees_per_unit(action_dim: int, joint_units: str, gripper_dims: tuple[int, ...]) -> np.ndarray:
    """Without a calibration: 1.8 (RANGE_M100_100, full turn) or 1.0 (DEGREES); NaN for grippers."""
    if joint_units not in ("range_m100_100", "degrees"):
        raise EdgevlaError(f"unknown joint units '{joint_units}': use range_m100_100 or degrees")
    scale = np.full(action_dim, FULL_TURN_M100_DEGREES if joint_units == "range_m100_100" else 1.0)
    scale[list(gripper_dims)] = np.nan
    return scale


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
    degrees: np.ndarray,
    seed: int = 0,
) -> tuple[list[DimError], int]:
    """Per-dim errors of `candidate` against `reference` over all chunks; `degrees` (action_dim,)
    converts action units to motor degrees (NaN: no degree figure). Returns (errors, chunks)."""
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
    if degrees.shape != (a.shape[1],):
        raise EdgevlaError(f"the robot has {degrees.shape[0]} joints, the policy {a.shape[1]} action dims")
    errors = []
    for dim in range(a.shape[1]):
        diff = np.abs(a[:, dim] - b[:, dim])
        scale = float(degrees[dim])
        joint = not np.isnan(scale)
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
