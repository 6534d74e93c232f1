"""`edgevla sim expert`: does the scripted expert solve the task? (in-process servo model)."""

from __future__ import annotations

import argparse
import json

from rich.progress import track

from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld


def run_expert(world: SimWorld, seed: int) -> tuple[bool, float | None]:
    """Play the expert's plan on episode `seed`; (success, seconds to success)."""
    expert = ScriptedExpert(world.kin, world.reset(seed))
    dt = 1.0 / world.config.fps
    for step in range(int(expert.duration / dt) + 1):
        if world.step_servos(expert.goal(step * dt)):
            return True, (step + 1) * dt
    return False, None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    world = SimWorld(SimConfig(task=args.task, cameras=()))
    seeds = range(args.seed, args.seed + args.episodes)
    results = [run_expert(world, s) for s in track(seeds, description="expert", disable=args.json)]
    times = [t for ok, t in results if ok]
    report = {
        "task": args.task,
        "episodes": args.episodes,
        "success_rate": len(times) / max(1, args.episodes),
        "time_to_success_s": sum(times) / len(times) if times else None,
        "failed_seeds": [s for s, (ok, _) in zip(seeds, results, strict=True) if not ok],
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.task}: expert success {report['success_rate']:.0%} over {args.episodes} episodes, "
            f"mean time to success {report['time_to_success_s'] or float('nan'):.2f} s"
        )
    return 0
