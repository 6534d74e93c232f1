"""The dual system: System 2 (the VLM over the camera frames and the instruction) at its own pace,
System 1 (the current state against System 2's newest context, then the action head) for every
chunk the control loop asks for.

Exact for SmolVLA-class policies: image and language tokens never attend to the state token, so
the keys/values System 2 caches do not depend on the state, and System 1 with the current state
gives the actions of a full pass over those frames and that state (tests/export/test_split_prefix.py).
What a cached context costs is only its age: the frames are older than the state.

`LocalSystems` holds the newest context of one robot and guards its age: a chunk request whose
newest context was taken more than `max_age_s` before the request's own observation, or in an
earlier episode, is held (no chunk, a reason), never served from it. It runs wherever the model
is: in the robot's process (thread worker), in the worker process, or on the server, one per
connection. The robot side paces System 2 (`dual_worker.DualWorker`).
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import (
    IMAGE_PREFIX,
    STATE_KEY,
    TASK_KEY,
    TIMESTAMP_KEY,
    Context,
    DualPolicy,
    Guidance,
    Observation,
    PolicySpec,
)

DEFAULT_MAX_AGE_S = 1.0
HELD_NO_CONTEXT = "no-context"  # System 2 has not finished a pass on this episode's frames yet
HELD_STALE = "stale-context"  # the newest context is older than the request allows


@dataclass(frozen=True)
class DualConfig:
    """How often System 2 runs, and how old a context System 1 may use.

    vlm_hz        System 2 in its own thread on the newest frames, at most this often (back to
                  back when it is slower);
    prefix_every  or: System 2 in line, on the request's own frames, before every N-th chunk;
    max_context_age_s  oldest context a chunk may be computed from, seconds between its frames
                  and the request's state (None: 1 s, or two System 2 periods when longer).
    """

    vlm_hz: float | None = None
    prefix_every: int | None = None
    max_context_age_s: float | None = None

    def __post_init__(self) -> None:
        if (self.vlm_hz is None) == (self.prefix_every is None):
            raise EdgevlaError("the dual system runs System 2 by --vlm-hz F or by --prefix-every N: give one")
        if self.vlm_hz is not None and not (math.isfinite(self.vlm_hz) and 0 < self.vlm_hz <= 1000):
            raise EdgevlaError(f"--vlm-hz must be a finite number > 0 and <= 1000, got {self.vlm_hz:g}")
        if self.prefix_every is not None and self.prefix_every < 1:
            raise EdgevlaError(f"--prefix-every must be >= 1, got {self.prefix_every}")
        age = self.max_context_age_s
        if age is not None and not (math.isfinite(age) and age > 0):
            raise EdgevlaError(f"--max-context-age must be a finite number > 0, got {age:g}")

    @property
    def max_age_s(self) -> float:
        if self.max_context_age_s is not None:
            return self.max_context_age_s
        return max(DEFAULT_MAX_AGE_S, 2 / self.vlm_hz) if self.vlm_hz else DEFAULT_MAX_AGE_S

    def describe(self) -> str:
        pace = (
            f"System 2 at {self.vlm_hz:g} Hz" if self.vlm_hz else f"System 2 every {self.prefix_every} chunks"
        )
        return f"dual system: {pace}, contexts up to {self.max_age_s:g} s old"


@dataclass(frozen=True)
class ContextInfo:
    """A context System 2 finished: when its frames were taken (the observation's timestamp, on
    the robot's clock) and how long the pass took where the model runs."""

    frame_time: float
    encode_ms: float


@dataclass(frozen=True)
class Acted:
    """System 1's answer to one chunk request: a chunk, or held with the reason."""

    actions: np.ndarray | None  # (chunk_size, action_dim) robot units; None when held
    held: str | None  # HELD_NO_CONTEXT or HELD_STALE when no chunk came
    context_age_s: float | None  # the request's timestamp minus the frame time of the context
    frame_time: float | None  # of the context used (or refused)
    infer_ms: float  # System 1's own time (0 when held)


class Systems(Protocol):
    """Both systems of one policy for one robot, wherever the model runs. `encode` and `act` may
    be called at the same time from two threads."""

    spec: PolicySpec

    def encode(self, episode: int, obs: Observation) -> ContextInfo:
        """System 2 on the frames and task of `obs` (stamped), for `episode`; publishes the
        context for the chunk requests of that episode."""
        ...

    def act(
        self,
        episode: int,
        obs: Observation,
        max_age_s: float,
        noise: np.ndarray | None = None,
        guidance: Guidance | None = None,
    ) -> Acted:
        """System 1 on the state of `obs` (stamped) against the newest context of `episode`, held
        when there is none or it is older than `max_age_s`."""
        ...

    def close(self) -> None: ...


def not_dual(name: str) -> str:
    return (
        f"policy '{name}' does not split its prefix (a replay or another kind): run it without "
        "--vlm-hz / --prefix-every"
    )


def frames_of(obs: Observation) -> Observation:
    """What System 2 reads: the images, the task and the timestamp (no state)."""
    return {k: v for k, v in obs.items() if k.startswith(IMAGE_PREFIX) or k in (TASK_KEY, TIMESTAMP_KEY)}


def state_of(obs: Observation) -> Observation:
    """What System 1 reads: the state and the timestamp (no images: they stay where System 2 is)."""
    return {k: v for k, v in obs.items() if k in (STATE_KEY, TIMESTAMP_KEY)}


def stamp(obs: Observation, what: str) -> float:
    value = obs.get(TIMESTAMP_KEY)
    if value is None:
        raise EdgevlaError(f"the dual system needs the {what}'s timestamp (the control loop stamps each one)")
    return float(value)


@dataclass(frozen=True)
class _Published:
    episode: int
    context: Context
    frame_time: float


class LocalSystems:
    """A DualPolicy's two systems in this process, with the newest context and its age guard.

    `context_lock` / `act_lock` serialise the passes of robots that share one policy (a server);
    each robot has its own LocalSystems, so its own context. `owns_policy`: close the policy too."""

    def __init__(
        self,
        policy: DualPolicy,
        context_lock: threading.Lock | None = None,
        act_lock: threading.Lock | None = None,
        owns_policy: bool = True,
    ):
        if not isinstance(policy, DualPolicy):
            raise EdgevlaError(not_dual(policy.spec.name))
        self.policy, self.spec, self.owns_policy = policy, policy.spec, owns_policy
        self._context_lock = context_lock or nullcontext()
        self._act_lock = act_lock or nullcontext()
        self._lock = threading.Lock()
        self._newest: _Published | None = None

    def encode(self, episode: int, obs: Observation) -> ContextInfo:
        frame_time = stamp(obs, "frames")
        started = time.perf_counter()
        with self._context_lock:
            context = self.policy.encode_context(obs)
        encode_ms = (time.perf_counter() - started) * 1e3
        with self._lock:
            newest = self._newest
            # a pass that finishes after a newer one (or for an earlier episode) never replaces it
            if newest is None or (episode, frame_time) >= (newest.episode, newest.frame_time):
                self._newest = _Published(episode, context, frame_time)
        return ContextInfo(frame_time, encode_ms)

    def act(
        self,
        episode: int,
        obs: Observation,
        max_age_s: float,
        noise: np.ndarray | None = None,
        guidance: Guidance | None = None,
    ) -> Acted:
        now = stamp(obs, "state")
        with self._lock:
            newest = self._newest
        if newest is None or newest.episode != episode:
            return Acted(None, HELD_NO_CONTEXT, None, None, 0.0)
        age = now - newest.frame_time
        if age > max_age_s:
            return Acted(None, HELD_STALE, age, newest.frame_time, 0.0)
        started = time.perf_counter()
        with self._act_lock:
            actions = self.policy.act(newest.context, obs, noise, guidance)
        infer_ms = (time.perf_counter() - started) * 1e3
        return Acted(np.asarray(actions, np.float32), None, age, newest.frame_time, infer_ms)

    def close(self) -> None:
        if self.owns_policy:
            self.policy.close()
