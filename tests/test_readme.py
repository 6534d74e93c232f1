"""The README's command blocks, run as written against the virtual firmware.

Each block is read from README.md and changed only where a test must differ from a user: ports
under the test's folder, a synthetic camera, short durations, the tiny preset and a few steps.
Every substitution must find its text in the block, so a README edit that moves away from what is
tested fails here until this file follows it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from edgevla.cli import COMMANDS

README = Path(__file__).resolve().parent.parent / "README.md"
NO_ARM = "No arm yet?"
SESSION = "## A session, end to end"

# "No arm yet?": the README's /tmp links, under the test's folder; a short teleop.
NO_ARM_CHANGES = (
    ("/tmp/leader", "{tmp}/leader"),
    ("/tmp/follower", "{tmp}/follower"),
    ("--duration 10", "--duration 2"),
)
# The session: the arms are the virtual firmware at the No-arm links; a synthetic camera for the
# USB one; two one-second episodes; no download (the recipe starts from the tiny preset on a CPU,
# for two steps); a run of a few seconds.
SESSION_CHANGES = (
    ("/dev/edgevla-leader", "{tmp}/leader"),
    ("/dev/edgevla-follower", "{tmp}/follower"),
    ("--camera front=/dev/video0", "--camera front=synthetic --camera-size 96x96"),
    ("--episodes 50", "--episodes 2 --episode-seconds 1 --reset-seconds 0 --no-keyboard"),
    ("edgevla fetch lerobot/smolvla_base                     # once, with network\n", ""),
    (
        "--out runs/pick\n",
        "--out runs/pick --max-steps 2 --set base=preset:tiny --set device=cpu --set precision=fp32"
        " --set 'model={{resize: 32, chunk_size: 10}}' --set batch_size=2 --set grad_accum=1"
        " --set num_workers=0 --set cpu_threads=1 --set eval.interval=0\n",
    ),
    ("--camera front=0", "--camera front=synthetic --duration 3"),
)


def readme_block(heading: str, changes: tuple[tuple[str, str], ...], tmp: Path) -> list[str]:
    """The first ```bash block after `heading`, changed as listed: one command per line."""
    text = README.read_text()
    start = text.index("```bash\n", text.index(heading)) + len("```bash\n")
    block = text[start : text.index("```", start)]
    for old, new in changes:
        assert old in block, f"README.md no longer has '{old.strip()}' under '{heading}': update {__file__}"
        block = block.replace(old, new.format(tmp=tmp))
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def argv_of(line: str) -> tuple[list[str], bool]:
    """The `edgevla` arguments of one README line, and whether it runs in the background (&)."""
    background = line.rstrip().endswith("&")
    words = shlex.split(line.rstrip().removesuffix("&"), comments=True)
    assert words[0] == "edgevla", line
    return words[1:], background


def environment(tmp: Path) -> dict[str, str]:
    # no user calibration of this machine's arms applies to the virtual ones: the shipped profiles do
    return {**os.environ, "HF_LEROBOT_CALIBRATION": str(tmp / "user-calibration")}


@contextmanager
def served(argv: list[str], tmp: Path) -> Iterator[None]:
    """A background `edgevla firmware serve`, ready before the next command runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgevla", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp,
        env=environment(tmp),
    )
    try:
        said = [proc.stdout.readline() for _ in range(2)]
        assert any(line.startswith("ready") for line in said), said
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_block(lines: list[str], tmp: Path) -> list[subprocess.CompletedProcess]:
    done = []
    with ExitStack() as background:
        for line in lines:
            argv, in_background = argv_of(line)
            if in_background:
                background.enter_context(served(argv, tmp))
                continue
            result = subprocess.run(
                [sys.executable, "-m", "edgevla", *argv],
                capture_output=True,
                text=True,
                timeout=900,
                cwd=tmp,
                env=environment(tmp),
            )
            assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            done.append(result)
    return done


def test_no_arm_block_runs_on_the_virtual_firmware(tmp_path):
    (teleop,) = run_block(readme_block(NO_ARM, NO_ARM_CHANGES, tmp_path), tmp_path)
    assert "Traceback" not in teleop.stderr


def test_session_commands_are_accepted_by_their_parsers(tmp_path):
    """The fast check of the end-to-end block: every command and option it names still exists."""
    for line in readme_block(SESSION, SESSION_CHANGES, tmp_path):
        argv, _ = argv_of(line)
        parser = argparse.ArgumentParser(prog=f"edgevla {argv[0]}")
        importlib.import_module(COMMANDS[argv[0]].module).configure(parser)
        assert parser.parse_args(argv[1:]).handler, line


@pytest.mark.slow  # records, trains, exports, quantizes, checks and runs: minutes on a small CPU
def test_session_block_runs_end_to_end_on_the_virtual_firmware(tmp_path):
    arms = [line for line in readme_block(NO_ARM, NO_ARM_CHANGES, tmp_path) if line.rstrip().endswith("&")]
    *_, check, run = run_block(arms + readme_block(SESSION, SESSION_CHANGES, tmp_path), tmp_path)
    assert "calibrated so101_follower" in check.stdout
    stats = json.loads((tmp_path / "run.json").read_text())
    assert stats["chunks"] >= 1 and stats["ticks"] >= 30
    assert (tmp_path / "data" / "pick" / "meta" / "info.json").is_file()
