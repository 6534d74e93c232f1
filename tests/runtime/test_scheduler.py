"""Tick alignment, latency tracking and chunk merging: the arithmetic the control loop relies on."""

import math

import numpy as np
import pytest

from edgevla.runtime.merging import ENSEMBLE_M, merge, rtc_guidance, rtc_weights
from edgevla.runtime.scheduler import ActionQueue, ScheduleConfig


def ramp(start: float, n: int = 10, step: float = 1.0, dim: int = 2) -> np.ndarray:
    """Chunk whose row i is start + i*step on every joint (easy to recognise after merging)."""
    return np.repeat((start + step * np.arange(n, dtype=np.float32))[:, None], dim, axis=1)


def test_chunk_rows_land_on_their_ticks_and_late_ones_are_skipped():
    q = ActionQueue(2, ScheduleConfig(chunk_size=10, merge="latest"))
    late = q.add_chunk(obs_tick=100, now_tick=103, chunk=ramp(0))
    assert late == 3  # rows for ticks 100..102 passed while the model ran
    assert q.pop(103)[0] == 3 and q.pop(104)[0] == 4
    assert q.pop(107)[0] == 7  # ticks 105, 106 are dropped when the loop moved past them
    assert q.depth(108) == 2
    assert q.pop(108)[0] == 8 and q.pop(109)[0] == 9
    assert q.pop(110) is None and q.depth(110) == 0


def test_a_chunk_older_than_itself_is_entirely_late():
    q = ActionQueue(2, ScheduleConfig(chunk_size=10))
    assert q.add_chunk(obs_tick=0, now_tick=25, chunk=ramp(0)) == 10
    assert q.pop(25) is None


def test_request_threshold_follows_measured_latency():
    q = ActionQueue(2, ScheduleConfig(chunk_size=50, margin_ticks=1))
    assert q.threshold() == 25  # nothing measured yet: half a chunk
    for t in range(5):
        q.add_chunk(obs_tick=100 * t, now_tick=100 * t + 4, chunk=ramp(0, 50))
    assert q.latency_ticks == pytest.approx(4.0)
    assert q.threshold() == 5  # 4 ticks of latency + 1 spare
    q.add_chunk(obs_tick=1000, now_tick=1012, chunk=ramp(0, 50))  # a slow one widens the margin
    assert q.threshold() == 11  # EMA 6 ticks + 2 x deviation 2 + 1 spare
    assert ActionQueue(2, ScheduleConfig(chunk_size=50, request_at=30)).threshold() == 30
    slow = ActionQueue(2, ScheduleConfig(chunk_size=20))
    slow.add_chunk(0, 80, ramp(0, 20))
    assert slow.threshold() == 19  # never beyond the chunk: ask as soon as a chunk starts


def test_should_request_when_queue_is_down_to_the_threshold():
    q = ActionQueue(2, ScheduleConfig(chunk_size=10, request_at=3))
    assert q.should_request(0)  # empty
    q.add_chunk(0, 0, ramp(0))
    assert not q.should_request(0)
    assert q.should_request(7)  # ticks 7, 8, 9 left


def test_latest_replaces_the_overlap():
    q = ActionQueue(2, ScheduleConfig(chunk_size=10, merge="latest"))
    q.add_chunk(0, 0, ramp(0))
    q.pop(0)
    q.add_chunk(obs_tick=4, now_tick=6, chunk=ramp(100))
    assert [q.pop(t)[0] for t in (6, 7)] == [102, 103]


def test_blend_ramps_from_the_old_plan_to_the_new_one():
    old, new = ramp(0, 5, step=0), ramp(10, 5, step=0)
    out = merge("blend", old[:4], np.ones(4), new)
    weights = np.arange(1, 5) / 5  # new chunk's share rises 0.2 .. 0.8, then 1 after the overlap
    np.testing.assert_allclose(out[:4, 0], 10 * weights)
    assert out[4, 0] == 10
    assert np.all(np.diff(out[:, 0]) > 0)  # a monotone hand-over, no step


def test_ensemble_is_acts_exponentially_weighted_vote():
    q = ActionQueue(1, ScheduleConfig(chunk_size=4, merge="ensemble"))
    for value, tick in ((1.0, 0), (2.0, 1), (4.0, 2)):
        q.add_chunk(tick, tick, np.full((4, 1), value, np.float32))
        q.pop(tick)
    w = np.exp(-ENSEMBLE_M * np.arange(3))  # oldest chunk weighs most
    expected = (w * [1, 2, 4]).sum() / w.sum()  # tick 3 was predicted by all three chunks
    assert q.pop(3)[0] == pytest.approx(expected, rel=1e-6)


def test_rtc_weights_freeze_the_delay_then_decay_to_zero():
    w = rtc_weights(chunk_size=20, delay=3, remaining=12)
    assert list(w[:3]) == [1, 1, 1]
    assert np.all(np.diff(w[3:12]) < 0) and 0 < w[11] < w[3] <= 1
    assert np.all(w[12:] == 0)  # rows the old plan never had are free
    assert rtc_weights(10, delay=0, remaining=0).sum() == 0


def test_rtc_guidance_targets_the_old_plan_and_keeps_the_new_chunk():
    q = ActionQueue(2, ScheduleConfig(chunk_size=10, merge="rtc"))
    assert q.guidance(0) is None  # nothing to continue
    q.add_chunk(0, 2, ramp(0))  # latency 2 ticks
    q.pop(2)
    g = q.guidance(3)
    assert g.actions.shape == (10, 2) and g.weights.shape == (10,)
    np.testing.assert_array_equal(g.actions[:7, 0], np.arange(3, 10))  # what will still run
    assert list(g.weights[:2]) == [1, 1] and g.weights[7:].sum() == 0
    assert rtc_guidance(np.zeros((0, 2), np.float32), 10, 2) is None
    q.add_chunk(3, 5, ramp(50))
    assert q.pop(5)[0] == 52  # rtc takes the guided chunk as it is


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="merge must be one of"):
        ScheduleConfig(chunk_size=10, merge="average")
    assert math.isclose(merge("latest", ramp(0, 3), np.ones(3), ramp(5, 3))[0, 0], 5)


def test_after_starvation_blend_eases_in_from_the_held_pose_instead_of_jumping():
    q = ActionQueue(1, ScheduleConfig(chunk_size=8, merge="blend", ease_ticks=3))
    hold = np.array([0.0], np.float32)
    q.add_chunk(obs_tick=0, now_tick=0, chunk=np.full((8, 1), 40.0, np.float32), hold=hold)
    assert [round(float(q.pop(t)[0]), 3) for t in range(5)] == [10.0, 20.0, 30.0, 40.0, 40.0]
    # a chunk so late that one row is left eases over that row: halfway, the most a first step covers
    late = ActionQueue(1, ScheduleConfig(chunk_size=8, merge="blend", ease_ticks=3))
    late.add_chunk(obs_tick=0, now_tick=7, chunk=np.full((8, 1), 40.0, np.float32), hold=hold)
    assert late.pop(7)[0] == 20.0
    latest = ActionQueue(1, ScheduleConfig(chunk_size=8, merge="latest"))
    latest.add_chunk(0, 0, np.full((8, 1), 40.0, np.float32), hold=hold)
    assert latest.pop(0)[0] == 40.0  # `latest` means it: the driver's max_relative_target is the only guard
    rtc = ActionQueue(1, ScheduleConfig(chunk_size=8, merge="rtc", ease_ticks=3))
    g = rtc.guidance(0, hold)  # RTC asks the policy itself to start from the held pose
    assert g.actions[0, 0] == 0.0 and g.weights[0] > 0 and g.weights[3:].sum() == 0
