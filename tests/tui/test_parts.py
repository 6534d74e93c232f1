"""The TUI's non-UI parts: metrics parsing, recipe checking."""

from __future__ import annotations

import json

import pytest

from edgevla.train.recipe import RecipeError
from edgevla.tui.recipe_text import check_recipe_text
from edgevla.tui.training_run import TrainingRun


def test_metrics_are_read_as_they_grow_and_a_partial_line_waits(tmp_path):
    run = TrainingRun(tmp_path / "r.yaml", "", tmp_path, max_steps=None)
    metrics = tmp_path / "metrics.jsonl"
    start = {"kind": "start", "step": 0, "total_steps": 10}
    step = {"kind": "train", "step": 2, "loss": 0.5, "lr": 1e-4, "samples_per_s": 8.0, "elapsed_s": 4.0}
    line = json.dumps(step)
    metrics.write_text(json.dumps(start) + "\n" + line[:20])
    assert run.poll().losses == []
    metrics.write_text(json.dumps(start) + "\n" + line + "\n")
    progress = run.poll()
    assert progress.losses == [(2, 0.5)] and progress.total_steps == 10
    assert progress.eta_s == pytest.approx(16.0)  # 2 s a step, 8 steps left


def test_recipe_errors_name_the_recipe_and_field():
    with pytest.raises(RecipeError, match=r"mine.*: batch_size: must be > 0"):
        check_recipe_text("base: preset:tiny\nsteps: 3\nbatch_size: 0\n", "mine")
    assert check_recipe_text("base: preset:tiny\nsteps: 3\n", "mine", out="x").out == "x"
