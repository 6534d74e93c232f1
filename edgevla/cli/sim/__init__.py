"""`edgevla sim ...`: the simulated SO-101 (show an episode, check the scripted expert, serve it).

One module per command in this package, imported only when it runs."""

from __future__ import annotations

import argparse

from edgevla.cli.dispatch import Command, dispatch

SIM_COMMANDS: dict[str, Command] = {
    "show": Command(
        "edgevla.cli.sim.show", "play the scripted expert on one episode, save a PNG strip / GIF"
    ),
    "expert": Command(
        "edgevla.cli.sim.expert", "success rate of the scripted expert over N episodes (--json)"
    ),
    "calibration": Command("edgevla.cli.sim.calibration", "write the simulated arms' calibration profiles"),
    "demos": Command("edgevla.cli.sim.demos", "record scripted-expert demonstrations into a LeRobotDataset"),
    "pretrain": Command(
        "edgevla.cli.sim.pretrain", "grounding pretraining of a from-scratch VLM on rendered scenes"
    ),
    "rollout": Command(
        "edgevla.cli.sim.rollout", "a correction round: the scripted expert corrects a policy, recorded"
    ),
    "serve": Command("edgevla.cli.sim.serve", "run the simulator, publish its cameras for sim:NAME sources"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help=f"one of: {', '.join(sorted(SIM_COMMANDS))}"
    )
    parser.set_defaults(handler=lambda args: dispatch("edgevla sim", SIM_COMMANDS, args.command))
