"""What a correction-round dataset holds (the summary `edgevla dataset info` prints) and how to
train on it: plain, DAgger (corrected frames weighted), HG-DAgger (the corrections alone) or
advantage-conditioned. Hidden for a dataset of plain demonstrations."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Select, Static

from edgevla.tui.recipe_text import ADVANTAGE, DAGGER, HG_DAGGER, PLAIN

MODES = [
    ("DAgger: corrected frames weighted", DAGGER),
    ("HG-DAgger: the corrections alone", HG_DAGGER),
    ("advantage-conditioned (RECAP)", ADVANTAGE),
    ("plain: no weights, no indicator", PLAIN),
]
MODE_NAMES = {mode: name for name, mode in MODES}


class CorrectionsPanel(Vertical):
    """`show(summary_lines, mode)` for a corrections dataset, `show(None)` hides it. Picking a mode
    posts the Select's Changed event; the screen writes the recipe's `corrections:` section."""

    def compose(self) -> ComposeResult:
        yield Static(id="corrections-summary")
        yield Label("Train on the corrections")
        yield Select(MODES, id="corrections-mode", allow_blank=False, value=PLAIN)

    def show(self, summary: list[str] | None, mode: str | None = None) -> None:
        self.display = summary is not None
        if summary is not None:
            self.query_one("#corrections-summary", Static).update("\n".join(summary))
            self.follow(mode)

    def follow(self, mode: str | None) -> None:
        """Show the mode the recipe text asks for (None: the text cannot be read; left as is)."""
        if mode is not None:
            self.query_one("#corrections-mode", Select).value = mode
