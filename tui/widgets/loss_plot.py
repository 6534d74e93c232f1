"""The training loss (and eval loss) against the step, drawn with plotext."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    def on_mount(self) -> None:
        self.show([], [])

    def show(self, losses: list[tuple[int, float]], eval_losses: list[tuple[int, float]]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title("loss")
        plt.xlabel("step")
        if losses:
            plt.plot([s for s, _ in losses], [v for _, v in losses], label="train", marker="braille")
        if eval_losses:
            plt.scatter([s for s, _ in eval_losses], [v for _, v in eval_losses], label="eval")
        self.refresh()
