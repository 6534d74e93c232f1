"""The `edgevla` command.

Each subcommand lives in its own module and is imported only when it runs, so `edgevla --help`
and the robot-side commands never load torch. A command module provides
`configure(parser: argparse.ArgumentParser) -> None`, which adds its arguments and sets
`handler=<callable(args) -> int>` with `parser.set_defaults`.

A command group (`bench`, `sim`) is a package: its `__init__` lists its commands and dispatches
to one module each. Arguments several commands take come from `edgevla.cli.args`; a command
module never imports another one (what they share is library code).
"""

from __future__ import annotations

import os
import signal
import sys

from edgevla.cli.dispatch import Command, dispatch

# name -> where it lives and what it does; keep one line per command.
COMMANDS: dict[str, Command] = {
    "bench": Command("edgevla.cli.bench", "measure bus, policy, recording and training figures (--json)"),
    "firmware": Command("edgevla.cli.firmware", "serve virtual servo firmware (Feetech, Dynamixel) on a pty"),
    "motors": Command("edgevla.cli.motors", "servo scan, id/baud setup, configure, torque on/off, read"),
    "calibrate": Command("edgevla.cli.calibrate", "calibrate an arm (homing + ranges) into a profile"),
    "sim": Command("edgevla.cli.sim", "simulated SO-101: show episodes, check the scripted expert"),
    "demo": Command(
        "edgevla.cli.demo", "the embedded demo: a trained policy drives the simulated arm, offline"
    ),
    "eval": Command("edgevla.cli.eval", "closed-loop success rate of a policy on the simulated arm (--json)"),
    "model": Command("edgevla.cli.model", "policy presets and checkpoints: info (params), init"),
    "predict": Command("edgevla.cli.predict", "one action chunk from an observation .npz (parity contract)"),
    "fetch": Command("edgevla.cli.fetch", "download a policy + its VLM config/tokenizer for offline use"),
    "export": Command(
        "edgevla.cli.export", "ONNX artifact from a checkpoint (onnx); TensorRT engines/recipe (tensorrt)"
    ),
    "quantize": Command(
        "edgevla.cli.quantize", "int8-dynamic, int8-static, fp16 artifacts; bitsandbytes int8/nf4"
    ),
    "check": Command(
        "edgevla.cli.check", "torch vs artifact on the same observations and noise: errors per action dim"
    ),
    "dataset": Command("edgevla.cli.dataset", "inspect, validate or repair a LeRobotDataset v3.0 directory"),
    "teleop": Command("edgevla.cli.teleop", "leader -> follower mirroring with the driver's safety clamp"),
    "record": Command("edgevla.cli.record", "teleoperate and record episodes into a LeRobotDataset v3.0"),
    "train": Command(
        "edgevla.cli.train", "fine-tune (LoRA/expert/full) or train a policy from a recipe YAML"
    ),
    "rollout": Command(
        "edgevla.cli.rollout",
        "run a policy, take over with the leader arm, record each attempt (corrections)",
    ),
    "run": Command("edgevla.cli.run", "drive a robot with a policy: async inference at a fixed control rate"),
    "tui": Command("edgevla.cli.tui", "terminal UI: calibrate arms, inspect motors, run training recipes"),
    "serve": Command(
        "edgevla.cli.serve", "serve a policy over websockets to robots (edgevla run --policy ws://)"
    ),
}


def main(argv: list[str] | None = None) -> int:
    try:
        code = dispatch("edgevla", COMMANDS, sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's exit
    except BrokenPipeError:
        # `edgevla dataset info | head`: the reader has what it wanted; end as a Unix tool killed by
        # SIGPIPE would, with stdout pointed at /dev/null so the exit's own flush fails no more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code
