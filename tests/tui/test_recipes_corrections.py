"""The recipes screen on a correction-round dataset: its summary (what `edgevla dataset info` prints),
the training mode written into the recipe's `corrections:` section, and none of it for plain demos."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from textual.widgets import Input, Select, TextArea

from edgevla.cli import main
from edgevla.train.recipe import load_recipe
from edgevla.train.synthetic import write_reaching_dataset
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.recipe_text import (
    ADVANTAGE,
    DAGGER,
    HG_DAGGER,
    PLAIN,
    check_recipe_text,
    corrections_mode,
    with_corrections_mode,
)
from edgevla.tui.training_run import TrainingRun
from edgevla.tui.widgets.corrections_panel import CorrectionsPanel

from .helpers import wait_for, write_correction_round
from .test_recipes import TINY, open_recipes, status_of

REPO = Path(__file__).resolve().parents[2]
CORRECTIONS_RECIPE = REPO / "recipes" / "small-sim-corrections.yaml"


@pytest.fixture(scope="module")
def correction_round(tmp_path_factory) -> Path:
    return write_correction_round(tmp_path_factory.mktemp("round") / "round1")


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return write_reaching_dataset(
        tmp_path_factory.mktemp("plain") / "demos", episodes=2, length=6, cameras=()
    )


def summary_of(screen) -> str:
    return str(screen.query_one("#corrections-summary").render())


def test_a_correction_round_shows_its_summary_and_advantage_goes_into_the_launched_recipe(
    correction_round, tmp_path, monkeypatch, capsys
):
    launched: list[TrainingRun] = []
    monkeypatch.setattr(TrainingRun, "start", lambda run: launched.append(run) or run)  # no training
    out = tmp_path / "run"

    async def scenario():
        app = EdgevlaApp()
        async with app.run_test(size=(150, 45)) as pilot:
            screen = await open_recipes(pilot, app)
            panel = screen.query_one(CorrectionsPanel)
            screen.query_one("#recipe-text", TextArea).load_text(yaml.safe_dump(TINY, sort_keys=False))
            hidden_before = not panel.display
            screen.query_one("#dataset", Input).value = str(correction_round)
            screen.query_one("#out", Input).value = str(out)
            await wait_for(pilot, lambda: panel.display)
            shown = summary_of(screen)
            screen.query_one("#corrections-mode", Select).focus()
            await pilot.press("enter")  # open the list: DAgger, advantage, plain (picked)
            await pilot.press("up", "enter")
            await wait_for(
                pilot, lambda: "advantage: true" in screen.query_one("#recipe-text", TextArea).text
            )
            await pilot.click("#validate")
            await pilot.pause(0.1)
            valid = status_of(screen)
            await pilot.click("#launch")
            await pilot.pause(0.1)
            return hidden_before, shown, valid

    hidden_before, shown, valid = asyncio.run(scenario())
    assert hidden_before
    assert main(["dataset", "info", str(correction_round)]) == 0
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert shown.splitlines() == printed[-2:]  # the lines `edgevla dataset info` ends with
    assert "2 attempts (1 succeeded, 1 failed" in shown and "10 autonomous, 4 corrected" in shown
    assert valid.startswith("valid:") and "corrections: advantage (intervention_weight 3)" in valid
    (run,) = launched
    assert run.dataset == str(correction_round) and "--recipe" in run.argv
    recipe = load_recipe(run.recipe)  # what `edgevla train` would read
    assert recipe.corrections.advantage and recipe.corrections.intervention_weight == 3
    assert recipe.batch_size == TINY["batch_size"]  # the rest of the edited recipe unchanged


def test_a_plain_dataset_shows_no_corrections_controls_and_a_corrections_recipe_is_one_error(
    correction_round, plain, tmp_path
):
    out = tmp_path / "run"

    async def scenario():
        app = EdgevlaApp()
        async with app.run_test(size=(150, 45)) as pilot:
            screen = await open_recipes(pilot, app)
            panel = screen.query_one(CorrectionsPanel)
            screen.query_one("#recipe-text", TextArea).load_text(CORRECTIONS_RECIPE.read_text())
            screen.query_one("#out", Input).value = str(out)
            screen.query_one("#dataset", Input).value = str(correction_round)
            await wait_for(pilot, lambda: panel.display)
            mode = screen.query_one("#corrections-mode", Select).value  # follows the recipe: DAgger
            screen.query_one("#dataset", Input).value = str(plain)
            await wait_for(pilot, lambda: not panel.display)
            await pilot.click("#launch")
            await pilot.pause(0.1)
            return mode, status_of(screen), screen.run

    mode, status, run = asyncio.run(scenario())
    assert mode == DAGGER
    assert status.count("\n") == 0 and f"corrections: {plain} is plain demonstrations" in status
    assert "remove the recipe's corrections section" in status
    assert run is None and not out.exists()


def test_the_mode_rewrites_only_the_corrections_section():
    text = CORRECTIONS_RECIPE.read_text().replace("bad_before_s: 1.0", "bad_before_s: 2.5")
    advantage = with_corrections_mode(text, ADVANTAGE)
    assert corrections_mode(advantage) == ADVANTAGE
    section = yaml.safe_load(advantage)["corrections"]
    assert section == {"intervention_weight": 3, "advantage": True, "bad_before_s": 2.5}  # kept
    others = [line for line in text.splitlines() if not line.startswith(" ") or "bad_before_s" in line]
    assert [line for line in advantage.splitlines() if line in others][:5] == others[:5]  # comments too
    plain = with_corrections_mode(advantage, PLAIN)
    assert "corrections" not in yaml.safe_load(plain) and plain.splitlines()[0] == text.splitlines()[0]
    again = with_corrections_mode(plain, DAGGER).splitlines()
    assert [line for line in again if line.startswith("corrections:")] == ["corrections:"]


def test_hg_dagger_leaves_the_policys_frames_out_and_dagger_takes_them_back():
    text = CORRECTIONS_RECIPE.read_text()
    hg = with_corrections_mode(text, HG_DAGGER)
    assert corrections_mode(hg) == HG_DAGGER
    assert yaml.safe_load(hg)["corrections"]["policy_weight"] == 0
    assert check_recipe_text(hg, "hg").corrections.policy_weight == 0  # the trainer reads it so
    dagger = with_corrections_mode(hg, DAGGER)
    assert corrections_mode(dagger) == DAGGER and "policy_weight" not in yaml.safe_load(dagger)["corrections"]
