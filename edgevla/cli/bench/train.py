"""`edgevla bench train`: training throughput (samples/s) of a recipe on this machine.

Runs the recipe for a few optimizer steps on a dataset (or a generated synthetic reaching
dataset: 20 episodes x 60 frames, two 96x128 cameras) and reports samples/s after warm-up.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from edgevla.errors import EdgevlaError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", default="recipes/small-cpu.yaml", help="recipe YAML (default: small-cpu)")
    parser.add_argument("--dataset", help="dataset directory (default: a generated synthetic one)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps to time (after warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from edgevla.train.loop import train
    from edgevla.train.recipe import load_recipe, parse_override
    from edgevla.train.synthetic import write_reaching_dataset

    if args.steps < 1 or args.warmup < 1:
        raise EdgevlaError("--steps and --warmup must be >= 1")
    with tempfile.TemporaryDirectory(prefix="edgevla-bench-train-") as scratch:
        dataset = args.dataset
        if dataset is None:
            dataset = str(
                write_reaching_dataset(Path(scratch) / "reach", 20, 60, ("front", "wrist"), 96, 128)
            )
        total = args.warmup + args.steps
        overrides = dict(parse_override(text) for text in args.set)
        overrides.update({"datasets": [dataset], "log_interval": 1, "eval.interval": 0,
                          "checkpoint_interval": total, "out": str(Path(scratch) / "run")})  # fmt: skip
        recipe = load_recipe(args.recipe, overrides)
        out = Path(recipe.out)
        train(recipe, args.recipe, out, max_steps=total)
        lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        steps = [line for line in lines if line["kind"] == "train"]
        start = next(line for line in lines if line["kind"] == "start")
        timed = steps[args.warmup - 1 :]
        seconds = timed[-1]["elapsed_s"] - timed[0]["elapsed_s"]
        samples = start["samples_per_step"] * (len(timed) - 1)
    result = {
        "recipe": recipe.name,
        "base": recipe.base,
        "mode": recipe.mode,
        "batch_size": recipe.batch_size,
        "grad_accum": recipe.grad_accum,
        "precision": recipe.precision,
        "trainable_params": start["trainable_params"],
        "timed_steps": len(timed) - 1,
        "samples_per_s": samples / seconds,
        "s_per_step": seconds / (len(timed) - 1),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": "cuda" if recipe.device != "cpu" and torch.cuda.is_available() else "cpu",
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['recipe']} ({result['mode']}, batch {result['batch_size']}x{result['grad_accum']}, "
            f"{result['precision']}, {result['device']}, {result['torch_threads']} threads): "
            f"{result['samples_per_s']:.1f} samples/s, {result['s_per_step']:.2f} s/step "
            f"over {result['timed_steps']} steps"
        )
    return 0
