"""`edgevla train --recipe FILE`: fine-tune or train a policy from a recipe (docs/TRAINING.md).

Multi-GPU: `accelerate launch -m edgevla train --recipe FILE ...` (one process per GPU, DDP).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="recipe YAML (see recipes/)")
    parser.add_argument(
        "--dataset", action="append", help="dataset directory (repeatable); replaces the recipe's"
    )
    parser.add_argument("--out", help="output directory (default: the recipe's `out`)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.json")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set batch_size=4 --set optim.lr=3e-4",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print params, batch shapes, peak memory; no training"
    )
    parser.add_argument("--json", action="store_true", help="--dry-run: print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.errors import EdgevlaError
    from edgevla.train.recipe import load_recipe, parse_override

    overrides = dict(parse_override(text) for text in args.set)
    if args.dataset:
        overrides["datasets"] = args.dataset
    if args.out:
        overrides["out"] = args.out
    if args.max_steps is not None and args.max_steps <= 0:
        raise EdgevlaError(f"--max-steps must be > 0, got {args.max_steps}")
    recipe = load_recipe(args.recipe, overrides)
    source = args.recipe
    if args.dry_run:
        from edgevla.train.dryrun import dry_run, format_report

        report = dry_run(recipe, source)
        print(json.dumps(report) if args.json else format_report(report))
        return 0
    from edgevla.signals import stop_on_signals
    from edgevla.train.loop import train

    interrupts = stop_on_signals()
    outputs = train(
        recipe, source, Path(recipe.out), max_steps=args.max_steps, resume=args.resume, interrupts=interrupts
    )
    if outputs.interrupted:
        print(
            f"interrupted after step {outputs.steps}: checkpoint in {Path(recipe.out) / 'checkpoints'}; "
            "the same command with --resume continues",
            file=sys.stderr,
        )
        return 130
    if outputs.policy is not None:  # only the main process exports
        # a resume at the last step trains nothing: no loss to report
        loss = "n/a" if outputs.final_loss is None else f"{outputs.final_loss:.4f}"
        print(f"trained {outputs.steps} steps, final loss {loss}")
        if outputs.adapter is not None:
            print(f"adapter (PEFT): {outputs.adapter}")
        print(f"policy (merged): {outputs.policy}")
    return 0
