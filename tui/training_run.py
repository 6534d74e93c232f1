"""`edgevla train` in a subprocess (never in the UI process) and its progress from OUT/metrics.jsonl.

The UI polls `TrainingRun.poll()`; it reads only the lines appended since the last poll (a
line still being written is left for the next one). Stopping sends SIGINT to the run's process
group, as Ctrl-C would; the last checkpoint stays, so `--resume` continues from it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LOG_NAME = "tui-train.log"


@dataclass
class Progress:
    step: int = 0
    total_steps: int | None = None
    loss: float | None = None
    lr: float | None = None
    samples_per_s: float | None = None
    elapsed_s: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) for the curve
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    policy: str | None = None  # the merged policy directory, once the run is done

    @property
    def eta_s(self) -> float | None:
        if not self.total_steps or not self.step or not self.elapsed_s:
            return None
        return self.elapsed_s / self.step * (self.total_steps - self.step)

    def add(self, record: dict) -> None:
        kind = record.get("kind")
        if kind in ("start", "train"):
            self.total_steps = record.get("total_steps", self.total_steps)
        if kind == "start":
            self.step = record.get("step", 0)
        elif kind == "train":
            self.step, self.loss, self.lr = record["step"], record["loss"], record["lr"]
            self.samples_per_s, self.elapsed_s = record.get("samples_per_s"), record.get("elapsed_s", 0.0)
            self.losses.append((self.step, self.loss))
        elif kind == "eval":
            self.eval_losses.append((record["step"], record["eval_loss"]))
        elif kind == "done":
            self.policy = record.get("policy")


def command(name: str, *args: str) -> list[str]:
    """An `edgevla` subcommand run by this Python (the TUI's own install)."""
    return [sys.executable, "-m", "edgevla", name, *args]


class TrainingRun:
    def __init__(self, recipe: Path, dataset: str, out: Path, max_steps: int | None, resume: bool = False):
        self.recipe, self.dataset, self.out = Path(recipe), dataset, Path(out)
        args = ["--recipe", str(self.recipe), "--out", str(self.out)]
        if dataset:
            args += ["--dataset", dataset]
        if max_steps:
            args += ["--max-steps", str(max_steps)]
        if resume:
            args.append("--resume")
        self.argv = command("train", *args)
        self.progress = Progress()
        self.process: subprocess.Popen | None = None
        self._offset = 0

    @property
    def log_path(self) -> Path:
        return self.out / LOG_NAME

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    def start(self) -> TrainingRun:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def poll(self) -> Progress:
        try:
            with open(self.metrics_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.progress
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode().splitlines():
            try:
                self.progress.add(json.loads(line))
            except (json.JSONDecodeError, KeyError):
                continue  # a foreign line is not worth stopping the display for
        return self.progress

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 3) -> str:
        """The run's last output lines (its error, when it failed), progress bars left out."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip() and "it/s" not in line]
        return "\n".join(kept[-lines:])
