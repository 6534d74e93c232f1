"""`edgevla sim pretrain`: grounding pretraining of a from-scratch VLM on rendered scenes.

Writes a policy directory whose VLM finds the cube an instruction names (edgevla.train.grounding);
a recipe takes it as `base` and fine-tunes the action expert on demonstrations.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CHUNK_FRAMES = 250  # frames per rendering job (progress granularity)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe", type=Path, required=True, help="the recipe whose preset and model shapes to build"
    )
    parser.add_argument("--out", type=Path, required=True, help="policy directory to write")
    parser.add_argument("--frames", type=int, default=16000, help="rendered training frames (default 16000)")
    parser.add_argument("--held-out", type=int, default=400, help="frames kept for the reported accuracy")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-interval", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="processes rendering frames")
    parser.add_argument("--seed", type=int, default=0, help="offset of the grounding scene seeds")
    parser.add_argument("--camera", default="front", help="simulated camera (the recipe's model camera name)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=main)


def _render(job: tuple[int, int, str, int]):
    from edgevla.sim.grounding import render_grounding_frames

    count, seed, camera, size = job
    return render_grounding_frames(count, seed, camera, size)


def render_frames(args: argparse.Namespace, size: int, show: bool):
    from rich.progress import Progress

    from edgevla.sim.grounding import GroundingFrames

    jobs = [
        (min(CHUNK_FRAMES, args.frames - start), args.seed + start, args.camera, size)
        for start in range(0, args.frames, CHUNK_FRAMES)
    ]
    parts = []
    with Progress(disable=not show) as progress, ProcessPoolExecutor(max(1, args.workers)) as pool:
        task = progress.add_task("rendering grounding frames", total=args.frames)
        for part in pool.map(_render, jobs):
            parts.append(part)
            progress.advance(task, len(part))
    return GroundingFrames(
        np.concatenate([p.images for p in parts]),
        [colors for p in parts for colors in p.colors],
        np.concatenate([p.pixels for p in parts]),
    )


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edgevla.errors import EdgevlaError
    from edgevla.sim.render import CAMERAS
    from edgevla.sim.world import SimConfig
    from edgevla.train.grounding import pretrain_grounding, save_pretrained
    from edgevla.train.prepare import preset_config
    from edgevla.train.recipe import load_recipe

    if args.camera not in CAMERAS:
        raise EdgevlaError(f"--camera: unknown simulated camera '{args.camera}'; known: {', '.join(CAMERAS)}")
    if min(args.frames, args.steps, args.batch) < 1 or not 0 <= args.held_out < args.frames or args.lr <= 0:
        raise EdgevlaError(
            "--frames, --steps and --batch must be positive, --held-out below --frames, --lr positive"
        )
    recipe = load_recipe(args.recipe)
    if recipe.preset is None:
        raise EdgevlaError(
            f"{args.recipe}: base: grounding pretraining builds a preset from scratch; "
            f"this recipe starts from the checkpoint {recipe.base}, which has its own VLM"
        )
    sim = SimConfig()
    cfg = preset_config(
        recipe,
        recipe.preset,
        {
            "cameras": (args.camera,),
            "camera_shapes": ((sim.height, sim.width),),
            "state_dim": 6,
            "action_dim": 6,
            "fps": sim.fps,
        },
        str(args.recipe),
    )
    show = not args.json
    frames = render_frames(args, cfg.resize, show)
    with tqdm(total=args.steps, desc="grounding", disable=not show) as bar:

        def progress(row: dict) -> None:
            bar.update(1)
            shown = {"loss": f"{row['loss']:.3f}", "acc": f"{row['token_acc']:.2f}"}
            if show and "held_out_token_acc" in row:
                bar.write(
                    f"step {row['step']}: held-out token accuracy {row['held_out_token_acc']:.1%}, "
                    f"place error {row['held_out_place_px']:.1f} px"
                )
            bar.set_postfix(shown)

        net, head, result = pretrain_grounding(
            cfg, frames, recipe, args.steps, args.batch, args.lr, args.held_out, args.eval_interval, progress
        )
    meta = {"recipe": str(args.recipe), "frames": args.frames, "batch": args.batch, "lr": args.lr}
    report = save_pretrained(net, head, result, args.out, meta)
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.out}: grounded VLM, held-out token accuracy {result.held_out_token_acc:.1%} "
            f"(chance {1 / cfg.tokens_per_image:.1%}), place error {result.held_out_place_px:.1f} px, "
            f"{result.steps} steps in {result.seconds / 60:.1f} min"
        )
    return 0
