"""Help: what each screen does and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# edgevla TUI

**Everywhere:** `?` this help · `Ctrl+P` command palette · `Escape` back · `q` quit.

## Start
Serial ports (with the USB adapter and a warning when its latency timer is above 1 ms), robots
from `hardware/`, calibration profiles, recipes. `Tab` moves between tables, arrows pick a row.
`c` calibrates the picked robot on the picked port · `m` motors on the picked port · `t` recipes.

## Calibrate
Live raw and normalised position of every joint. `Enter` runs the next step:
1. torque off, hold the arm mid-range (hand-guided) · 2. half-turn homing, then move every
joint through its whole range while min/max grow · 3. review (suspicious ranges are flagged) ·
4. write limits to the servos · 5. save the profile (lerobot-compatible JSON).
`r` starts over (re-calibrating is safe: homing never adds to an old offset) · `a` toggles
hand-guided / self-moving arm (a virtual leader served with `--motion sweep`).

## Leader vs follower
`edgevla tui --compare so101 LEADER_PORT FOLLOWER_PORT`: both arms in calibrated units, joint
by joint; a joint more than 5 units apart is flagged. Check this before teleoperation.

## Motors
`s` scans the port at every baud rate · `t` torque on/off of the picked motor ·
`left`/`right` jog it (torque on, within its limits) · `n` sets up a new motor.

## Recipes
Pick a recipe, edit its YAML, set dataset and output, `v` validates, `l` launches
`edgevla train` in a subprocess; loss curve, lr, samples/s and ETA follow its metrics file.
`x` stops; `R` resumes; when it finishes, `e` exports ONNX and `i` quantizes int8.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
