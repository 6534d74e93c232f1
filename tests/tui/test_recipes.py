"""The recipes screen: validation errors in the UI, and a real `edgevla train` subprocess whose
loss the screen follows from the metrics file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable, Input, TextArea

from edgevla.train.synthetic import write_reaching_dataset
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.screens.recipes import RecipesScreen

from .helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
SMALL_CPU = REPO / "recipes" / "small-cpu.yaml"
# small-cpu shrunk for a test: the tiny preset on one CPU thread, a few steps
TINY = {
    **yaml.safe_load(SMALL_CPU.read_text()),
    "base": "preset:tiny",
    "model": {"chunk_size": 10, "resize": 32},
    "batch_size": 4,
    "cpu_threads": 1,
    "num_workers": 0,
    "log_interval": 1,
    "checkpoint_interval": 3,
    "eval": {"episodes": 1, "interval": 0, "batches": 1},
}


async def open_recipes(pilot, app) -> RecipesScreen:
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(app.screen, RecipesScreen))
    return app.screen


def status_of(screen) -> str:
    return str(screen.query_one("#recipe-status").render())


def test_recipe_with_an_error_shows_the_field_and_launches_nothing(tmp_path):
    async def scenario():
        app = EdgevlaApp()
        async with app.run_test(size=(150, 45)) as pilot:
            screen = await open_recipes(pilot, app)
            text = screen.query_one("#recipe-text", TextArea)
            text.load_text(SMALL_CPU.read_text().replace("mode: full", "mode: fully"))
            screen.query_one("#out", Input).value = str(tmp_path / "run")
            await pilot.click("#launch")
            await pilot.pause(0.2)
            assert screen.run is None
            first = status_of(screen)
            text.load_text("batch_size: [unclosed\n")
            await pilot.click("#validate")
            await pilot.pause(0.2)
            return first, status_of(screen)

    bad_field, bad_yaml = asyncio.run(scenario())
    assert "small-cpu" in bad_field and "mode: 'fully' is not one of lora" in bad_field
    assert "not valid YAML" in bad_yaml
    assert not (tmp_path / "run").exists()


def test_invalid_recipe_file_is_listed_as_invalid(tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text("name: broken\nbase: preset:tiny\nsteps: -3\n")
    monkeypatch.setenv("EDGEVLA_RECIPES_DIR", str(tmp_path))

    async def scenario():
        app = EdgevlaApp()
        async with app.run_test(size=(150, 45)) as pilot:
            screen = await open_recipes(pilot, app)
            table = screen.query_one("#recipe-list", DataTable)
            return table.get_row_at(0), status_of(screen)

    row, status = asyncio.run(scenario())
    assert row == ["broken", "invalid"]
    assert "steps: must be > 0" in status


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_reaching_dataset(tmp_path_factory.mktemp("data") / "reach", episodes=3, length=16)


@pytest.mark.slow  # ~60 s on a 2-core box: torch import, 6 steps, policy export
def test_launch_small_cpu_shows_the_loss_from_the_metrics_file(dataset, tmp_path):
    out = tmp_path / "run"

    async def scenario():
        app = EdgevlaApp()
        async with app.run_test(size=(150, 45)) as pilot:
            screen = await open_recipes(pilot, app)
            screen.query_one("#recipe-text", TextArea).load_text(yaml.safe_dump(TINY, sort_keys=False))
            screen.query_one("#dataset", Input).value = str(dataset)
            screen.query_one("#out", Input).value = str(out)
            screen.query_one("#max-steps", Input).value = "6"
            await pilot.click("#launch")
            assert screen.run is not None and screen.run.process is not None
            await wait_for(pilot, lambda: screen.run.returncode is not None, timeout=240)
            await wait_for(pilot, lambda: not screen.query_one("#export").disabled, timeout=5)
            return str(screen.query_one("#train-stats").render()), screen.run.progress

    stats, progress = asyncio.run(scenario())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if r["kind"] == "train"][-1]
    assert stats.startswith("step 6/6") and f"loss {last['loss']:.4f}" in stats
    assert [s for s, _ in progress.losses] == [1, 2, 3, 4, 5, 6]
    assert (out / "policy").is_dir()
