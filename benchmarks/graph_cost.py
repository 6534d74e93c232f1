"""One graph of an artifact under one memory setting: best wall and CPU time per run, peak RSS.

    python benchmarks/graph_cost.py ART/prefix.onnx [--memory off|arena|arena-shrink|mallopt]
        [--threads 1] [--runs 3]

CPU time (`time.process_time`) at one thread is what the fusion decisions in docs/PERFORMANCE.md
rest on: a shared, loaded box changes it far less than wall time. Memory settings:
    off           ONNX Runtime's CPU arena off (what edgevla's runtime does)
    arena         the arena on (ONNX Runtime's default)
    arena-shrink  the arena on, shrunk after every run (RunOptions memory.enable_memory_arena_shrinkage)
    mallopt       arena off, glibc told never to mmap and to keep freed memory (M_MMAP_MAX=0)
Run it once per setting: peak RSS is the process's.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import time

import onnxruntime as ort
from op_profile import feed_for

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph")
    parser.add_argument("--memory", default="off", choices=["off", "arena", "arena-shrink", "mallopt"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.enable_cpu_mem_arena = args.memory.startswith("arena")
    if args.memory == "mallopt":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    session = ort.InferenceSession(args.graph, options, providers=["CPUExecutionProvider"])
    run_options = ort.RunOptions()
    if args.memory == "arena-shrink":
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    feed = feed_for(session)
    session.run(None, feed, run_options)
    wall, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        session.run(None, feed, run_options)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"graph": args.graph, "memory": args.memory, "threads": args.threads,
                      "wall_ms_min": round(min(wall), 1), "cpu_ms_min": round(min(cpu), 1), "peak_rss_mb": round(rss)}))  # fmt: skip


if __name__ == "__main__":
    main()
