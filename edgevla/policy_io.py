"""What a robot and a policy agree on, in one torch-free module: observation keys, the shapes a
policy network is built for, the description a client gets, the fit check and the `Policy` protocol.

An observation is a plain dict of numpy arrays and the task string, keyed like lerobot:
    "observation.state":          float32 (state_dim,)        robot units (normalised joints)
    "observation.images.<camera>": uint8 (H, W, 3)            any size; the policy letterboxes
    "task":                        str                         the instruction
    "timestamp":                   float (optional)            seconds since the run started at
                                                               which the observation was taken
A chunk is float32 (chunk_size, action_dim) in robot units (unnormalised).

Who uses what: `ModelConfig.io` and `Manifest.io` give the `PolicyIO` of a checkpoint and of an
exported artifact; the numpy `Preprocessor` is built from one; `PolicyIO.spec` is the `PolicySpec`
that the wire sends; `check_fit` compares it with the robot's `Expectation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."
TASK_KEY = "task"
TIMESTAMP_KEY = "timestamp"
ACTION_KEY = "action"  # the dataset feature a policy learns to output

Observation = dict[str, Any]


def image_key(camera: str) -> str:
    """The observation key of camera `camera` ("front" -> "observation.images.front")."""
    return IMAGE_PREFIX + camera


@dataclass(frozen=True)
class CameraSpec:
    name: str  # the part after "observation.images."
    height: int  # size the policy resizes to (letterbox); any input size is accepted
    width: int


@dataclass(frozen=True)
class PolicySpec:
    """What a client must know about a policy before sending it observations."""

    name: str
    cameras: tuple[CameraSpec, ...]
    state_dim: int
    action_dim: int
    chunk_size: int
    num_steps: int
    max_action_dim: int
    max_tokens: int
    fps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyIO:
    """The inputs and outputs a SmolVLA-class network is built for, the same for its torch
    checkpoint, its ONNX artifact and the preprocessor that feeds either."""

    cameras: tuple[str, ...]  # names after "observation.images.", in prefix order
    empty_cameras: int  # masked empty image slots appended after the real cameras
    resize: int  # letterbox target (square)
    state_dim: int
    action_dim: int
    max_state_dim: int  # the network's padded widths
    max_action_dim: int
    chunk_size: int
    num_steps: int
    max_tokens: int  # language width: tokens read from the instruction
    fps: float | None = None  # the rate of the data it was trained on, when known
    # appended to every instruction before tokenising: the conditioning a policy was trained to be
    # asked for (advantage-conditioned training: "\nAdvantage: positive"); "" for plain policies
    task_suffix: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))  # a manifest stores a JSON list

    def spec(self, name: str, extra: dict[str, Any]) -> PolicySpec:
        """The description clients get; `extra` names the backend (the slot count is added)."""
        return PolicySpec(
            name=name,
            cameras=tuple(CameraSpec(camera, self.resize, self.resize) for camera in self.cameras),
            state_dim=self.state_dim,
            action_dim=self.action_dim,
            chunk_size=self.chunk_size,
            num_steps=self.num_steps,
            max_action_dim=self.max_action_dim,
            max_tokens=self.max_tokens,
            fps=self.fps,
            extra={**extra, "empty_cameras": self.empty_cameras}
            | ({"task_suffix": self.task_suffix} if self.task_suffix else {}),
        )


@dataclass(frozen=True)
class Guidance:
    """Real-Time Chunking inpainting target for the next chunk.

    `actions[i]` (robot units) is what the previous chunk will execute at step i of the new one
    while inference runs; `weights[i]` in [0, 1] is how strongly step i is pulled toward it at
    each denoising step (1 = frozen, 0 = free).
    """

    actions: np.ndarray  # float32 (chunk_size, action_dim)
    weights: np.ndarray  # float32 (chunk_size,)


@runtime_checkable
class Policy(Protocol):
    """The one interface that the torch model, the ONNX runtime, replays and remote policies share."""

    spec: PolicySpec

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        """Return one action chunk float32 (chunk_size, action_dim) in robot units.

        `noise` is float32 (chunk_size, max_action_dim); None draws it from N(0, 1).
        """
        ...

    def close(self) -> None:
        """Release what the policy holds; safe to call twice. A policy in this process holds only
        memory (this default); one behind a worker process or a connection ends it."""


@dataclass(frozen=True)
class Expectation:
    """What the robot side will send and needs back; a policy that does not fit is refused."""

    state_dim: int
    action_dim: int
    cameras: tuple[str, ...]
    fps: float
    policy: str | None = None  # pin a policy name; None accepts any that fits


def check_fit(spec: PolicySpec, expect: Expectation) -> str | None:
    """Why this policy cannot drive that robot (None when it can)."""
    if expect.policy is not None and expect.policy != spec.name:
        return f"this server runs policy '{spec.name}', the client asked for '{expect.policy}'"
    if spec.state_dim != expect.state_dim:
        return (
            f"policy '{spec.name}' takes a state of {spec.state_dim} values, the robot has {expect.state_dim}"
        )
    if spec.action_dim != expect.action_dim:
        return f"policy '{spec.name}' outputs {spec.action_dim} actions, the robot has {expect.action_dim} joints"
    missing = [c.name for c in spec.cameras if c.name not in expect.cameras]
    if missing:
        have = ", ".join(expect.cameras) or "none"
        return f"policy '{spec.name}' needs camera(s) {', '.join(missing)}; the robot has: {have} (use --camera NAME=SOURCE)"
    return None


@dataclass(frozen=True)
class Context:
    """What System 2 (the VLM over images + language) hands to System 1 (state + action head):
    the keys/values of the image and language tokens, opaque to everyone but the policy that
    made them, and when the newest frame it saw was taken (the observation's timestamp, on the
    caller's clock), so a user can refuse a cache that is too old."""

    arrays: tuple[Any, ...]
    frame_time: float | None


@runtime_checkable
class DualPolicy(Policy, Protocol):
    """A policy whose prefix splits in two: `infer(obs)` is `act(encode_context(obs), obs)`, and a
    context computed from earlier images gives the actions a full pass over those images with
    the current state would give."""

    def encode_context(self, obs: Observation) -> Context:
        """System 2: images and task of `obs` -> their cached keys/values."""
        ...

    def act(
        self,
        context: Context,
        obs: Observation,
        noise: np.ndarray | None = None,
        guidance: Guidance | None = None,
    ) -> np.ndarray:
        """System 1: the state of `obs` against `context` -> one chunk (chunk_size, action_dim),
        robot units; the images in `obs` are not read."""
        ...
