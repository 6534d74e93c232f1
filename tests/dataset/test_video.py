"""Video encoding must not out-rank the control loop it records for."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from edgevla.dataset.video import VideoConfig, VideoEncoder

REAL_TIME = {getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1)}


def real_time_threads() -> list[int]:
    threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    return [tid for tid in threads if os.sched_getscheduler(tid) in REAL_TIME]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="SVT-AV1 only gets real-time threads as root on Linux",
)
def test_svt_av1_threads_run_at_normal_priority_while_recording(tmp_path):
    """As root, SVT-AV1 makes its threads SCHED_FIFO 99; on a 2-core Jetson they would then
    pre-empt the recording's control loop. The encoder takes that back: no thread of the process
    is real-time while it encodes, and none after."""
    assert real_time_threads() == []
    encoder = VideoEncoder(tmp_path / "front.mp4", 96, 96, 30, VideoConfig(codec="libsvtav1"))
    assert encoder.ready.wait(30)
    rng = np.random.default_rng(0)
    for _ in range(20):
        encoder.put(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    while encoder.backlog:  # every frame handed to the codec; its threads are all running
        time.sleep(0.01)
    assert real_time_threads() == []
    frames, _ = encoder.finish()
    assert frames == 20 and real_time_threads() == []
