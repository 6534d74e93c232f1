"""Measure the alternative export: one ONNX graph with the Euler loop unrolled, against the
artifact's graphs + numpy loop, on CPU (flow head). Prints one JSON object (figures for docs/EXPORT.md).

    .venv/bin/python scripts/measure_unrolled_export.py --policy CKPT --art ART [--runs 10]

The unrolled graph cannot take RTC guidance between steps (it would need the guidance baked in);
this measures what it would buy in latency and costs in export time and file size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgevla.export.onnx_graphs import CONTEXT_INPUTS, example_inputs, export_graph
from edgevla.model.checkpoint import load_policy
from edgevla.model.heads.flow import time_embedding
from edgevla.model.network import SmolVLANet
from edgevla.runtime.onnx_policy import OnnxPolicy, open_session


class UnrolledChunk(nn.Module):
    """prefix + num_steps flow steps in one graph; time embeddings are constants."""

    def __init__(self, net: SmolVLANet):
        super().__init__()
        self.net = net
        cfg = net.cfg
        times = torch.tensor(
            [1.0 - step / cfg.num_steps for step in range(cfg.num_steps)], dtype=torch.float32
        )
        self.register_buffer(
            "times", time_embedding(times, cfg.expert_hidden_size, cfg.min_period, cfg.max_period).float()
        )

    def forward(self, images, image_masks, tokens, token_mask, state, noise):
        prefix_k, prefix_v, prefix_mask = self.net.encode_prefix(
            images, image_masks, tokens, token_mask, state
        )
        expert_k, expert_v = self.net.expert_cache(prefix_k, prefix_v)
        x_t, steps = noise, self.net.cfg.num_steps
        for step in range(steps):
            velocity = self.net.head.step(
                self.net,
                x_t,
                self.times[step : step + 1],
                expert_k=expert_k,
                expert_v=expert_v,
                prefix_mask=prefix_mask,
            )
            x_t = x_t - velocity / steps
        return x_t


def percentile_ms(run, runs: int) -> tuple[float, float]:
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--art", required=True, help="the artifact of the same checkpoint")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads for both")
    args = parser.parse_args()
    policy = load_policy(args.policy)
    two_graphs = OnnxPolicy(args.art, providers=["cpu"], threads=args.threads)
    rng = np.random.default_rng(0)
    spec = two_graphs.spec
    obs = {
        f"observation.images.{c.name}": rng.integers(0, 256, (c.height, c.width, 3), np.uint8)
        for c in spec.cameras
    }
    obs["observation.state"] = rng.normal(size=spec.state_dim).astype(np.float32)
    obs["task"] = "pick up the red cube"
    noise = rng.standard_normal((spec.chunk_size, spec.max_action_dim), dtype=np.float32)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "unrolled.onnx"
        examples = example_inputs(policy.net, policy.cfg.tokenizer_max_length)
        started = time.perf_counter()
        export_graph(
            UnrolledChunk(policy.net),
            (*examples["context"], examples["state"][0], torch.from_numpy(noise)[None]),
            path,
            [*CONTEXT_INPUTS, "state", "noise"],
            ["chunk"],
            18,
        )
        export_s = time.perf_counter() - started
        size_mb = sum(f.stat().st_size for f in Path(work).iterdir()) / 2**20
        session = open_session(path, ["CPUExecutionProvider"], args.threads)

        def unrolled_chunk() -> np.ndarray:  # same preprocessing and postprocessing as the artifact
            inputs = two_graphs.pre(obs)
            feed = {name: getattr(inputs, name)[None] for name in [*CONTEXT_INPUTS, "state"]}
            return two_graphs.pre.postprocess(session.run(None, {**feed, "noise": noise[None]})[0][0])

        agree = float(np.abs(unrolled_chunk() - two_graphs.infer(obs, noise=noise)).max())
        unrolled_ms = percentile_ms(unrolled_chunk, args.runs)
        two_ms = percentile_ms(lambda: two_graphs.infer(obs, noise=noise), args.runs)
    art_mb = sum((Path(args.art) / f).stat().st_size for f in two_graphs.manifest.graphs.values()) / 2**20
    print(
        json.dumps(
            {
                "policy": args.policy,
                "unrolled_chunk_ms_p50_p90": unrolled_ms,
                "two_graphs_chunk_ms_p50_p90": two_ms,
                "unrolled_file_mb": size_mb,
                "two_graphs_file_mb": art_mb,
                "unrolled_export_s": export_s,
                "max_abs_difference": agree,
                "runs": args.runs,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
