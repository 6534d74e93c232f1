"""Chunk latency of a policy on a synthetic observation: what `bench policy` and `bench heads` time."""

from __future__ import annotations

import resource
import time

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import Policy
from edgevla.runtime.synthetic import synthetic_observation


def measure(policy: Policy, runs: int, warmup: int) -> dict:
    if runs < 1 or warmup < 0:
        raise EdgevlaError("--runs must be >= 1 and --warmup >= 0")
    obs = synthetic_observation(policy.spec)
    for _ in range(warmup):
        policy.infer(obs)
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        policy.infer(obs)
        latencies.append((time.perf_counter() - start) * 1000)
    return {
        "chunk_ms_p50": float(np.percentile(latencies, 50)),
        "chunk_ms_p90": float(np.percentile(latencies, 90)),
        "chunk_ms_min": float(min(latencies)),
        "runs": runs,
        # ru_maxrss is in KiB on Linux: the whole process, interpreter and libraries included
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
