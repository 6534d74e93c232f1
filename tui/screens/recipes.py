"""Recipes screen: pick a recipe, edit it (validated by the train package), launch
`edgevla train` as a subprocess and follow its loss, lr, samples/s and ETA; export/quantize
the result when it finishes. A correction-round dataset (`edgevla rollout`, `edgevla sim rollout`)
shows its summary and how to train on it, written into the recipe's `corrections:` section."""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static, TextArea

from edgevla.errors import EdgevlaError
from edgevla.tui.inventory import RecipeInfo, find_recipes
from edgevla.tui.recipe_text import (
    PLAIN,
    check_recipe_text,
    corrections_mode,
    corrections_section,
    save_recipe_text,
    with_corrections_mode,
)
from edgevla.tui.training_run import Progress, TrainingRun, command
from edgevla.tui.widgets.corrections_panel import MODE_NAMES, CorrectionsPanel
from edgevla.tui.widgets.loss_plot import LossPlot

POLL_S = 0.5


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RecipesScreen(Screen):
    BINDINGS = [
        Binding("f2", "validate", "Validate"),
        Binding("f5", "launch", "Launch"),
        Binding("f6", "stop", "Stop"),
        Binding("f7", "resume", "Resume"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, recipes: list[RecipeInfo] | None = None):
        super().__init__()
        self.recipes = recipes if recipes is not None else find_recipes()
        self.current: RecipeInfo | None = None
        self.run: TrainingRun | None = None
        self.poll_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="recipes-body"):
            with Vertical(id="recipes-left"):
                yield Label("Recipes", classes="panel-title")
                table = DataTable(id="recipe-list", cursor_type="row")
                table.add_columns("recipe", "GPU memory")
                for recipe in self.recipes:
                    table.add_row(
                        recipe.name, recipe.memory if recipe.valid else "invalid", key=str(recipe.path)
                    )
                yield table
                yield Label("Dataset directory")
                yield Input(placeholder="runs/sim-reach-demos", id="dataset")
                yield CorrectionsPanel(id="corrections")
                yield Label("Output directory")
                yield Input(placeholder="runs/NAME", id="out")
                yield Label("Max steps (empty: the recipe's)")
                yield Input(placeholder="", id="max-steps", type="integer")
                with Horizontal(classes="buttons"):
                    yield Button("Validate", id="validate")
                    yield Button("Launch", id="launch", variant="primary")
                    yield Button("Stop", id="stop", variant="error", disabled=True)
                with Horizontal(classes="buttons"):
                    yield Button("Resume", id="resume", disabled=True)
                    yield Button("Export ONNX", id="export", disabled=True)
                    yield Button("Quantize int8", id="quantize", disabled=True)
            with Vertical(id="recipes-right"):
                yield TextArea(id="recipe-text", soft_wrap=False, show_line_numbers=True)
                yield Static(id="recipe-status")
                yield LossPlot(id="loss-plot")
                yield Static(id="train-stats")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "edgevla · recipes"
        if self.recipes:
            self._select(self.recipes[0])

    def on_unmount(self) -> None:
        if self.run:
            self.run.stop()

    # --- picking and editing ----------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        for recipe in self.recipes:
            if str(recipe.path) == event.row_key.value and recipe is not self.current:
                self._select(recipe)

    def _select(self, recipe: RecipeInfo) -> None:
        self.current = recipe
        self.query_one("#recipe-text", TextArea).load_text(recipe.path.read_text())
        self.query_one("#out", Input).value = f"runs/{recipe.name}"
        self._status(
            f"{recipe.path.name}: GPU memory {recipe.memory}" if recipe.valid else recipe.memory,
            error=not recipe.valid,
        )

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#recipe-status", Static)
        status.update(text)
        status.set_class(error, "error")

    def _value(self, key: str) -> str:
        return self.query_one(f"#{key}", Input).value.strip()

    # --- a correction-round dataset ---------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "dataset":
            self._show_dataset()

    def _show_dataset(self) -> None:
        """The corrections summary of the picked dataset (what `edgevla dataset info` prints) and
        the training modes; nothing for a plain dataset or a path that is no dataset (yet)."""
        lines = None
        root = Path(self._value("dataset"))
        if self._value("dataset") and (root / "meta" / "info.json").is_file():
            try:
                # imported when a dataset is picked: pyarrow and PyAV stay out of the TUI's start
                from edgevla.dataset.corrections import describe_corrections, read_corrections_summary

                summary = read_corrections_summary(root)
                lines = describe_corrections(summary) if summary else None
            except (EdgevlaError, ImportError) as err:
                self._status(f"dataset {root}: {err}", error=True)
        text = self.query_one("#recipe-text", TextArea).text
        self.query_one(CorrectionsPanel).show(lines, corrections_mode(text))

    def on_select_changed(self, event: Select.Changed) -> None:
        panel = self.query_one(CorrectionsPanel)
        if event.select.id != "corrections-mode" or not panel.display:
            return
        area = self.query_one("#recipe-text", TextArea)
        if corrections_mode(area.text) is None:
            self._status(
                "the recipe is not a YAML mapping (F2 says where): fix it, then pick again", error=True
            )
            return
        text = with_corrections_mode(area.text, str(event.value))
        if text != area.text:
            area.replace(text, (0, 0), area.document.end)  # one edit: undo brings the old text back
            done = "removed" if event.value == PLAIN else "written"
            self._status(f"recipe: corrections section {done} ({MODE_NAMES[str(event.value)]})")

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        panel = self.query_one(CorrectionsPanel)
        if panel.display:
            panel.follow(corrections_mode(event.text_area.text))

    def _plain_dataset_error(self, text: str) -> str | None:
        """A recipe with a `corrections:` section needs a correction-round dataset: on plain demos
        it would train as if it had none (this screen trains on one dataset)."""
        dataset = self._value("dataset")
        if corrections_section(text) is None or not dataset:
            return None
        try:
            from edgevla.dataset.corrections import is_corrections
            from edgevla.dataset.meta import load_info

            if is_corrections(load_info(Path(dataset))["features"]):
                return None
        except (EdgevlaError, ImportError) as err:
            return f"dataset {dataset}: {err}"
        return (
            f"corrections: {dataset} is plain demonstrations (no intervention column); remove the "
            "recipe's corrections section, or pick a dataset recorded by edgevla rollout or sim rollout"
        )

    def action_validate(self) -> bool:
        if self.current is None:
            return False
        text = self.query_one("#recipe-text", TextArea).text
        try:
            recipe = check_recipe_text(text, self.current.name, self._value("dataset"), self._value("out"))
        except EdgevlaError as err:
            self._status(str(err), error=True)
            return False
        if self._value("dataset") and not Path(self._value("dataset")).is_dir():
            self._status(f"dataset directory '{self._value('dataset')}' does not exist", error=True)
            return False
        if problem := self._plain_dataset_error(text):
            self._status(problem, error=True)
            return False
        steps = recipe.steps if recipe.steps is not None else f"{recipe.epochs} epochs"
        fixes = recipe.corrections
        trains_on = (
            f", corrections: {corrections_mode(text)} (intervention_weight {fixes.intervention_weight})"
            if corrections_section(text) is not None
            else ""
        )
        self._status(
            f"valid: {recipe.name}, mode {recipe.mode}, {steps} steps, batch {recipe.batch_size}{trains_on}"
        )
        return True

    # --- running ----------------------------------------------------------------------------

    def action_launch(self, resume: bool = False) -> None:
        if self.run and self.run.returncode is None:
            self._status("a run is going; stop it first", error=True)
            return
        if not self.action_validate():
            return
        if not self._value("dataset"):
            self._status("pick a dataset directory first", error=True)
            return
        out = Path(self._value("out") or f"runs/{self.current.name}")
        recipe_path = save_recipe_text(self.query_one("#recipe-text", TextArea).text, out / "recipe.yaml")
        max_steps = int(self._value("max-steps")) if self._value("max-steps") else None
        self.run = TrainingRun(recipe_path, self._value("dataset"), out, max_steps, resume=resume).start()
        self._status(f"training: {' '.join(self.run.argv[1:])}")
        self._buttons(running=True)
        self.poll_timer = self.set_interval(POLL_S, self._poll)

    def action_resume(self) -> None:
        self.action_launch(resume=True)

    def action_stop(self) -> None:
        if self.run and self.run.returncode is None:
            self.run.stop()
            self._status("stopped; Resume continues from the last checkpoint")

    def _buttons(self, running: bool, finished: bool = False) -> None:
        self.query_one("#launch", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running
        self.query_one("#resume", Button).disabled = running
        for key in ("export", "quantize"):
            self.query_one(f"#{key}", Button).disabled = not finished

    def _poll(self) -> None:
        if self.run is None:
            return
        progress = self.run.poll()
        self._show(progress)
        code = self.run.returncode
        if code is None:
            return
        self.poll_timer.stop()
        if code == 0 and progress.policy:
            self._status(f"finished: policy in {progress.policy}. Export ONNX or quantize it.")
            self._buttons(running=False, finished=True)
        else:
            self._status(f"training ended with exit code {code}: {self.run.log_tail()}", error=code != 0)
            self._buttons(running=False)

    def _show(self, progress: Progress) -> None:
        self.query_one("#loss-plot", LossPlot).show(progress.losses, progress.eval_losses)
        total = progress.total_steps or "?"
        loss = f"{progress.loss:.4f}" if progress.loss is not None else "-"
        lr = f"{progress.lr:.2e}" if progress.lr is not None else "-"
        rate = f"{progress.samples_per_s:.1f}" if progress.samples_per_s is not None else "-"
        self.query_one("#train-stats", Static).update(
            f"step {progress.step}/{total}  loss {loss}  lr {lr}  samples/s {rate}  "
            f"ETA {format_duration(progress.eta_s)}"
        )

    # --- after the run ----------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "validate": self.action_validate,
            "launch": self.action_launch,
            "stop": self.action_stop,
            "resume": self.action_resume,
            "export": lambda: self._artifact("export"),
            "quantize": lambda: self._artifact("quantize"),
        }
        actions[event.button.id]()

    def _artifact(self, kind: str) -> None:
        policy = self.run.progress.policy if self.run else None
        if not policy:
            return
        out = self.run.out
        if kind == "export":
            argv = command("export", "onnx", "--policy", policy, "--out", str(out / "onnx"))
        else:
            argv = command(
                "quantize", "--policy", policy, "--method", "int8-dynamic", "--out", str(out / "int8")
            )
        self._status(f"running: {' '.join(argv[1:])}")
        self._run_tool(argv)

    @work(thread=True, exclusive=True, group="artifact")
    def _run_tool(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True)
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
        self.app.call_from_thread(self._status, f"{' '.join(argv[3:5])}: {last[0]}", done.returncode != 0)
