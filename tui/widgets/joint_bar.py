"""One joint's live position: raw counts on a bar of the whole turn, the recorded range, the
normalised value, and a flag when the range looks wrong."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

BAR_WIDTH = 24
HEADER = f"{'joint':<14}{'raw':>6}  {'position in the turn':<{BAR_WIDTH}}  {'range':^11}  {'norm':>7}"


class JointBar(Widget):
    """Redraws itself (`refresh`, no layout pass) on every sample: cheap at 50 updates a second."""

    DEFAULT_CSS = """
    JointBar { height: 1; }
    """

    def __init__(self, joint: str, resolution: int, **kwargs):
        super().__init__(**kwargs)
        self.joint, self.resolution = joint, resolution
        self.raw: int | None = None
        self.normalised: float | None = None
        self.low: int | None = None
        self.high: int | None = None
        self.flag = ""

    def show(
        self, raw: int, normalised: float | None, low: int | None = None, high: int | None = None
    ) -> None:
        self.raw, self.normalised = raw, normalised
        if low is not None:
            self.low, self.high = low, high
        self.refresh()

    def set_range(self, low: int | None, high: int | None, flag: str = "") -> None:
        self.low, self.high, self.flag = low, high, flag
        self.refresh()

    def _cell(self, counts: int) -> int:
        return min(BAR_WIDTH - 1, max(0, counts * BAR_WIDTH // self.resolution))

    def render(self) -> Text:
        return self.line_text()

    def line_text(self) -> Text:
        line = Text(f"{self.joint:<14}", style="bold")
        line.append(f"{self.raw:>6} " if self.raw is not None else "     - ")
        cells = ["·"] * BAR_WIDTH
        styles = ["grey42"] * BAR_WIDTH
        if self.low is not None and self.high is not None:
            for i in range(self._cell(self.low), self._cell(self.high) + 1):
                cells[i], styles[i] = "━", "green"
        if self.raw is not None:
            cells[self._cell(self.raw)], styles[self._cell(self.raw)] = "█", "bold yellow"
        line.append("▕")
        for cell, style in zip(cells, styles, strict=True):
            line.append(cell, style=style)
        line.append("▏")
        if self.low is not None:
            line.append(f" {self.low:>5}..{self.high:<5}")
        else:
            line.append(" " * 13)
        line.append(f"{self.normalised:8.1f}" if self.normalised is not None else "       -")
        if self.flag:
            line.append(f"  ⚠ {self.flag}", style="bold red")
        return line
