"""The dual system with the shipped demo artifact in ONNX Runtime: System 2 (images + task ->
context) at its own pace, System 1 (the current state against the newest context) per chunk,
and a context older than --max-context-age never used, in this process, a worker process and a
server."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.hosting.control import PolicyChoice, control
from edgevla.hosting.transports import open_systems
from edgevla.policy_io import Expectation
from edgevla.runtime.dual import HELD_NO_CONTEXT, HELD_STALE, DualConfig, LocalSystems
from edgevla.runtime.dual_worker import DualWorker
from edgevla.runtime.loop import ControlLoop, LoopConfig
from edgevla.runtime.onnx_policy import OnnxPolicy
from edgevla.runtime.server import PolicyServer
from edgevla.runtime.wire import Refused

from .helpers import write_replay
from .test_loop import Recorder

ART = "edgevla/assets/small-reach/onnx-int8"  # the demo policy: one 96 px camera, chunk 20
EXPECT = Expectation(state_dim=6, action_dim=6, cameras=("front",), fps=30.0)
CAMERA = "front=synthetic?width=96&height=96"
RATE_FIELDS = (
    "system1_hz",
    "system2_hz",
    "contexts",
    "context_ms_p50",
    "context_age_ms_p50",
    "context_age_ms_max",
    "holds_no_context",
    "holds_stale_context",
    "tick_ms_p50",
    "tick_ms_p99",
    "action_state_age_ms_p50",
    "action_frame_age_ms_p50",
)


def _frames(seed: int, t: float) -> dict:
    image = np.random.default_rng(seed).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    return {"observation.images.front": image, "task": "touch the red cube", "timestamp": t}


def _state(seed: int, t: float) -> dict:
    state = np.random.default_rng(seed).uniform(-40, 40, 6).astype(np.float32)
    return {"observation.state": state, "timestamp": t}


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((20, 8)).astype(np.float32)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _answer(worker: DualWorker):
    results = []
    _wait_for(lambda: results.append(worker.poll()) or results[-1] is not None)
    return results[-1]


class Recording(LocalSystems):
    """The demo policy's two systems, remembering what System 1 was asked with and answered."""

    def __init__(self, policy):
        super().__init__(policy)
        self.acts: list[tuple[dict, object]] = []  # (the observation System 1 got, its answer)

    def act(self, episode, obs, max_age_s, noise=None, guidance=None):
        acted = super().act(episode, obs, max_age_s, noise, guidance)
        self.acts.append((dict(obs), acted))
        return acted


def test_an_old_context_is_never_used():
    systems = LocalSystems(OnnxPolicy(ART, threads=1))
    systems.encode(1, _frames(0, t=2.0))
    fresh = systems.act(1, _state(1, t=2.4), max_age_s=0.5, noise=_noise(0))
    assert fresh.held is None and fresh.actions.shape == (20, 6)
    assert fresh.frame_time == 2.0 and fresh.context_age_s == pytest.approx(0.4)
    old = systems.act(1, _state(1, t=2.6), max_age_s=0.5, noise=_noise(0))
    assert old.held == HELD_STALE and old.actions is None and old.context_age_s == pytest.approx(0.6)
    # a new episode (another task, a clock that started again) never reads the last one's context
    other = systems.act(2, _state(1, t=2.1), max_age_s=0.5, noise=_noise(0))
    assert other.held == HELD_NO_CONTEXT and other.actions is None
    systems.encode(2, _frames(2, t=0.0))
    assert systems.act(2, _state(1, t=0.1), max_age_s=0.5).actions is not None
    # a pass that finishes late (older frames) does not replace the newer context
    systems.encode(2, _frames(3, t=-1.0))
    assert systems.act(2, _state(1, t=0.4), max_age_s=0.5).frame_time == 0.0
    systems.close()


def test_system1_gets_the_state_at_request_time_not_at_context_time():
    """One context from frames taken at t=0, chunks asked for later with the arm elsewhere: each
    chunk is the split policy's answer for the request's own state, exactly, and not the one for
    the state the arm had when the frames were taken."""
    served = OnnxPolicy(ART, threads=1, seed=5)
    reference = OnnxPolicy(ART, threads=1, seed=5)  # the same noise draws, in the same order
    stale_reference = OnnxPolicy(ART, threads=1, seed=5)
    worker = DualWorker(LocalSystems(served), DualConfig(vlm_hz=1.0, max_context_age_s=5.0))
    frames = {**_frames(0, t=0.0), "observation.state": _state(100, 0.0)["observation.state"]}
    worker.attach(lambda: frames)
    try:
        _wait_for(lambda: worker.system2.contexts >= 1)
        context = reference.encode_context(frames)
        for tick, seed in ((3, 1), (6, 2), (9, 3)):  # System 2 runs at 1 Hz: one context for all
            request = {**frames, **_state(seed, tick / 30)}
            assert worker.submit(tick, request)
            result = _answer(worker)
            assert result.held is None and result.frame_time == 0.0
            assert result.context_age_s == pytest.approx(tick / 30)
            np.testing.assert_allclose(result.actions, reference.act(context, request), atol=1e-5)
            stale = stale_reference.act(context, frames)  # the arm's state when the frames were taken
            assert np.abs(result.actions - stale).max() > 0.5
        assert worker.system2.contexts == 1
    finally:
        worker.close()


@pytest.mark.parametrize("merge", ["latest", "blend", "ensemble", "rtc"])
def test_the_loop_runs_the_dual_system_with_every_merge_strategy(merge, synthetic_front):
    """At 30 fps with System 2 at 5 Hz: contexts at about that rate, every chunk from a context no
    older than allowed, and each chunk request carrying the arm's state of its own tick."""
    systems = Recording(OnnxPolicy(ART, threads=1))
    dual = DualConfig(vlm_hz=5.0, max_context_age_s=0.5)
    config = LoopConfig(fps=30.0, task="touch the red cube", merge=merge, dual=dual)
    worker = DualWorker(systems, dual)
    loop = ControlLoop(Recorder(), worker, systems.spec, config, (synthetic_front,))
    loop.record_sent()
    started = time.monotonic()
    loop.start()
    try:
        time.sleep(2.0)
        _wait_for(lambda: loop.stats.chunks >= 3)
    finally:
        loop.stop()
        elapsed = time.monotonic() - started
        worker.close()
    s = loop.stats.summary()
    assert s["dual_system"] and all(s[name] is not None for name in RATE_FIELDS)
    assert 0.5 * 5 * elapsed <= s["contexts"] <= 5 * elapsed + 2  # System 2's pace, roughly
    assert s["context_age_ms_max"] <= 500 + 1  # one histogram bin
    assert s["chunks"] >= 3 and s["holds_no_context"] >= 1  # the first request waits for System 2
    sent = dict(loop.sent)
    answered = [(obs, acted) for obs, acted in systems.acts if acted.actions is not None]
    assert len(answered) >= 3
    for obs, acted in answered:
        tick = round(obs["timestamp"] * 30)
        # the ideal arm is where it was last sent before `tick`: that is the state read at `tick`
        before = [t for t in sent if t < tick]
        at_tick = sent[max(before)] if before else Recorder().state
        np.testing.assert_array_equal(obs["observation.state"], at_tick)
        assert acted.context_age_s <= 0.5


def test_a_stale_context_holds_the_arm_and_is_counted():
    """System 2 every 3 s, contexts usable for 0.2 s: chunks come only just after each pass, the
    requests in between are held (and counted), and no chunk comes from an older context."""
    dual = DualConfig(vlm_hz=1 / 3, max_context_age_s=0.3)
    config = LoopConfig(fps=30.0, task="touch the red cube", dual=dual)
    with control(Recorder(), [CAMERA], OnnxPolicy(ART, threads=1), config) as hosted:
        loop = hosted.start()
        _wait_for(lambda: loop.stats.holds_stale_context >= 5 and loop.stats.ticks_starved > 0)
        hosted.stop()
    s = loop.stats.summary()
    assert s["chunks"] >= 1 and s["context_age_ms_max"] <= 300 + 1
    assert s["holds_stale_context"] >= 5 and s["ticks_starved"] > 0


def test_each_episode_starts_with_a_system2_pass_whatever_the_pace():
    worker = DualWorker(LocalSystems(OnnxPolicy(ART, threads=1)), DualConfig(vlm_hz=0.1))
    try:
        for episode in (1, 2):
            stats = worker.attach(lambda episode=episode: _frames(episode, 0.0))
            _wait_for(lambda stats=stats: stats.contexts == 1, timeout=5.0)  # not 10 s later
            worker.detach()
    finally:
        worker.close()


def test_prefix_every_runs_system2_in_line_every_n_chunks():
    systems = Recording(OnnxPolicy(ART, threads=1))
    worker = DualWorker(systems, DualConfig(prefix_every=3, max_context_age_s=10.0))
    worker.attach(lambda: None)
    try:
        for tick in range(7):
            assert worker.submit(tick, {**_frames(tick, tick / 30), **_state(tick, tick / 30)})
            assert _answer(worker).actions is not None
        assert worker.system2.contexts == 3  # chunks 0, 3 and 6 ran System 2 first
        assert [acted.frame_time for _, acted in systems.acts] == [0, 0, 0, 0.1, 0.1, 0.1, 0.2]
    finally:
        worker.close()


@pytest.fixture
def demo_server():
    server = PolicyServer(OnnxPolicy(ART, threads=1), port=0).start()
    yield server
    server.close()


@pytest.mark.parametrize("transport", ["process", "remote"])
def test_both_systems_across_a_link_give_the_local_answers(transport, demo_server):
    """In a worker process, or on a server: System 2 and System 1 run where the model is, and
    their answers are the ones this process computes, held ones included."""
    source = demo_server.url if transport == "remote" else ART
    systems = open_systems(source, transport=transport, expect=EXPECT, threads=1)
    local = OnnxPolicy(ART, threads=1)
    try:
        assert systems.act(1, _state(1, 0.0), 1.0).held == HELD_NO_CONTEXT
        info = systems.encode(1, {**_frames(0, 1.0), "observation.state": np.zeros(6, np.float32)})
        assert info.frame_time == 1.0 and info.encode_ms > 0
        acted = systems.act(1, _state(1, 1.3), 1.0, noise=_noise(4))
        assert acted.held is None and acted.context_age_s == pytest.approx(0.3)
        expected = local.act(local.encode_context(_frames(0, 1.0)), _state(1, 1.3), noise=_noise(4))
        np.testing.assert_allclose(acted.actions, expected, atol=1e-5)
        stale = systems.act(1, _state(1, 2.5), 1.0)
        assert stale.held == HELD_STALE and stale.actions is None
    finally:
        systems.close()


def test_the_loop_runs_the_dual_system_through_a_worker_process():
    config = LoopConfig(fps=30.0, task="touch the red cube", merge="rtc", dual=DualConfig(vlm_hz=4.0))
    choice = PolicyChoice(ART, worker="process", threads=1)
    with control(Recorder(), [CAMERA], choice, config) as hosted:
        loop = hosted.start()
        _wait_for(lambda: loop.stats.chunks >= 3 and loop.stats.system2.contexts >= 3)
        hosted.stop()
    s = loop.stats.summary()
    assert s["dual_system"] and s["worker_failures"] == 0 and s["context_failures"] == 0
    assert s["context_age_ms_max"] <= 1000 + 1  # the default: 1 s (two periods at 4 Hz are less)


def test_a_killed_worker_process_is_respawned_and_gets_a_context_before_chunks_come_again():
    config = LoopConfig(fps=30.0, task="touch the red cube", dual=DualConfig(vlm_hz=4.0))
    choice = PolicyChoice(ART, worker="process", threads=1)
    with control(Recorder(), [CAMERA], choice, config) as hosted:
        hosted.policy.backoff_s = (0.05, 0.2)
        loop = hosted.start()
        _wait_for(lambda: loop.stats.chunks >= 2)
        chunks, contexts = loop.stats.chunks, loop.stats.system2.contexts
        os.kill(hosted.policy._link.proc.pid, signal.SIGKILL)
        _wait_for(lambda: loop.stats.chunks >= chunks + 2)
        hosted.stop()
    assert hosted.policy.reconnects == 1 and loop.stats.system2.contexts > contexts
    assert loop.stats.summary()["context_age_ms_max"] <= 1000 + 1


def test_a_policy_whose_prefix_does_not_split_is_refused_in_one_line(tmp_path):
    replay = str(write_replay(tmp_path / "wave.npz"))
    expect = Expectation(state_dim=6, action_dim=6, cameras=(), fps=30.0)
    for transport in ("thread", "process"):
        with pytest.raises(Refused, match="does not split its prefix.*without --vlm-hz"):
            open_systems(replay, transport=transport, expect=expect)


def test_dual_config_says_what_is_wrong():
    with pytest.raises(EdgevlaError, match="give one"):
        DualConfig()
    with pytest.raises(EdgevlaError, match="give one"):
        DualConfig(vlm_hz=2.0, prefix_every=3)
    with pytest.raises(EdgevlaError, match="--vlm-hz must be"):
        DualConfig(vlm_hz=float("nan"))
    with pytest.raises(EdgevlaError, match="--max-context-age must be"):
        DualConfig(vlm_hz=2.0, max_context_age_s=0.0)
    assert DualConfig(vlm_hz=0.5).max_age_s == 4.0 and DualConfig(vlm_hz=5.0).max_age_s == 1.0


@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_bench_policy_times_both_systems_and_one_head_step(backend, capsys):
    from edgevla.cli import main

    source = ["--policy", ART] if backend == "onnx-int8" else ["--preset", "tiny"]
    argv = [
        "bench",
        "policy",
        *source,
        "--backend",
        backend,
        "--runs",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
    ]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for part in ("chunk", "context", "system1", "head_step"):
        assert report[f"{part}_ms_p50"] > 0, part
    # System 1 runs every head step (10) from the cache; the full chunk is System 2 and System 1
    assert report["head_step_ms_p50"] < report["system1_ms_p50"] and report["peak_rss_mb"] > 50
