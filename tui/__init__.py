"""edgevla's terminal UI (Textual): calibrate servos, inspect motors, run training recipes.

Launched by `edgevla tui`; see docs/TUI.md. The app class lives in `tui.app`, one module per
screen in `tui.screens`, reusable widgets in `tui.widgets`, styles in `tui/styles/*.tcss`.
Bus work runs in worker threads (`tui.calibration_session`), training in a subprocess
(`tui.training_run`): the UI thread only draws.
"""
