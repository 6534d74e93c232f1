"""`edgevla bench ...`: each benchmark prints human-readable figures, or one JSON object with --json.

One module per benchmark in this package, imported only when it runs."""

from __future__ import annotations

import argparse

from edgevla.cli.dispatch import Command, dispatch

BENCHES: dict[str, Command] = {
    "policy": Command("edgevla.cli.bench.policy", "action-chunk latency p50/p90 and peak memory of a policy"),
    "train": Command(
        "edgevla.cli.bench.train", "training samples/s of a recipe (default small-cpu, synthetic data)"
    ),
    "bus": Command(
        "edgevla.cli.bench.bus", "servo bus loop: sync read + sync write cycles/s, p50/p99 (--json)"
    ),
    "firmware": Command(
        "edgevla.cli.bench.firmware", "virtual servo firmware cost per sync read (in-process, pty)"
    ),
    "record": Command("edgevla.cli.bench.record", "recording loop: late/dropped frames, episode save cost"),
    "async": Command(
        "edgevla.cli.bench.async_run", "control period p50/p99 and starvation of edgevla run on a virtual arm"
    ),
    "heads": Command(
        "edgevla.cli.bench.heads",
        "the action heads trained on the same demos, exported, quantized: success vs chunk latency",
    ),
    "all": Command("edgevla.cli.bench.all", "run benchmarks/plan.yaml: report.md + report.json + PNG plots"),
    "sim": Command(
        "edgevla.cli.bench.sim", "sim render time; control-loop jitter/starvation on the simulated arm"
    ),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bench", nargs=argparse.REMAINDER, help=f"one of: {', '.join(sorted(BENCHES)) or '(none yet)'}"
    )
    parser.set_defaults(handler=lambda args: dispatch("edgevla bench", BENCHES, args.bench))
