"""Calibration screen: live joints and the guided steps, driven by a `CalibrationSession`.

The session's worker thread posts `SessionEvent`s (Textual's post_message is thread-safe);
this screen only draws them. Enter runs the next step, r starts over, a toggles between a
hand-guided arm and one that moves by itself (a virtual sweep).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from edgevla.drivers.bus import BusConfig
from edgevla.hardware import RobotDef
from edgevla.tui.calibration_session import CalibrationSession, Phase, PhaseChanged, Sample
from edgevla.tui.widgets.joint_bar import HEADER, JointBar

STEPS = (
    (Phase.CENTRE, "Torque off, centre pose"),
    (Phase.SWEEP, "Homing, sweep every joint"),
    (Phase.REVIEW, "Review ranges"),
    (Phase.WRITTEN, "Write limits to the servos"),
    (Phase.SAVED, "Save the calibration file"),
)
RATE_WINDOW_S = 1.0


class SessionEvent(Message):
    def __init__(self, event: object):
        super().__init__()
        self.event = event


class CalibrationScreen(Screen):
    BINDINGS = [
        Binding("enter", "next_step", "Next step", priority=True),
        Binding("r", "restart", "Start over"),
        Binding("a", "toggle_auto", "Hand/auto"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(
        self,
        robot: RobotDef,
        port: str,
        out: Path,
        auto: bool = False,
        bus_config: BusConfig | None = None,
    ):
        super().__init__()
        self.robot, self.port, self.out, self.auto = robot, port, out, auto
        self.bus_config = bus_config
        self.session: CalibrationSession | None = None
        self.phase = Phase.CONNECTING
        self.sample_times: list[float] = []
        self.last_sample: Sample | None = None
        self.saved_path: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="calibration"):
            yield Static(id="target")
            with Horizontal(id="calibration-body"):
                yield Static(id="steps")
                with Vertical(id="joints"):
                    yield Static(HEADER, id="joints-header")
                    for motor in self.robot.motors:
                        yield JointBar(motor.name, motor.servo.resolution, id=f"joint-{motor.name}")
            yield Static(id="instruction")
            yield Static(id="rate")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "edgevla · calibrate"
        self.sub_title = self.robot.name
        self._connect()

    def on_unmount(self) -> None:
        if self.session:
            self.session.close()

    # --- the session ------------------------------------------------------------------------

    def _connect(self) -> None:
        if self.session:
            self.session.close()
        self.sample_times.clear()
        self.session = CalibrationSession(
            self.robot,
            self.port,
            self.out,
            self.post_message_from_thread,
            auto=self.auto,
            bus_config=self.bus_config,
        ).start()
        self._show_phase(PhaseChanged(Phase.CONNECTING, f"Connecting to {self.robot.name} on {self.port}…"))

    def post_message_from_thread(self, event: object) -> None:
        self.post_message(SessionEvent(event))

    def on_session_event(self, message: SessionEvent) -> None:
        event = message.event
        if isinstance(event, Sample):
            self._show_sample(event)
        elif isinstance(event, PhaseChanged):
            self._show_phase(event)

    def _show_sample(self, sample: Sample) -> None:
        self.last_sample = sample
        for joint, raw in sample.raw.items():
            low = sample.mins[joint] if sample.mins else None
            high = sample.maxes[joint] if sample.maxes else None
            norm = sample.normalised[joint] if sample.normalised else None
            self.query_one(f"#joint-{joint}", JointBar).show(raw, norm, low, high)
        self.sample_times.append(sample.time)
        if sample.time - self.sample_times[0] >= RATE_WINDOW_S:  # refresh the figure once a second
            rate = (len(self.sample_times) - 1) / (sample.time - self.sample_times[0])
            self.query_one("#rate", Static).update(f"{rate:.0f} joint reads/s shown")
            self.sample_times = [sample.time]

    def _show_phase(self, event: PhaseChanged) -> None:
        self.phase = event.phase
        mode = "arm moves by itself (auto)" if self.auto else "hand-guided"
        self.query_one("#target", Static).update(
            f"[b]{self.robot.name}[/b] on [b]{self.port}[/b] · {mode} · profile {self.out}"
        )
        instruction = self.query_one("#instruction", Static)
        instruction.update(event.message)
        instruction.set_class(event.phase is Phase.FAILED, "error")
        self.query_one("#steps", Static).update(self._steps_text())
        if event.phase is Phase.CENTRE:
            for bar in self.query(JointBar):
                bar.set_range(None, None)
        if event.calibration is not None:
            for joint, cal in event.calibration.items():
                self.query_one(f"#joint-{joint}", JointBar).set_range(
                    cal.range_min, cal.range_max, event.flags.get(joint, "")
                )
        if event.phase is Phase.SAVED:
            self.saved_path = event.path
            self.notify(f"saved {event.path}", title="Calibration")
        if event.phase is Phase.FAILED:
            self.notify(event.message, title="Calibration stopped", severity="error", timeout=10)

    def _steps_text(self) -> str:
        order = [phase for phase, _ in STEPS]
        current = order.index(self.phase) if self.phase in order else -1
        lines = []
        for i, (_, label) in enumerate(STEPS):
            if self.phase is Phase.SAVED or i < current:
                mark = "[green]✓[/green]"
            elif i == current:
                mark = "[b yellow]▶[/b yellow]"
            else:
                mark = "[dim]·[/dim]"
            lines.append(f"{mark} {i + 1}. {label}")
        if self.phase is Phase.FAILED:
            lines.append("[b red]✗ stopped: see below[/b red]")
        return "\n".join(lines)

    # --- keys -------------------------------------------------------------------------------

    def action_next_step(self) -> None:
        if self.session is None:
            return
        if self.phase is Phase.CENTRE:
            self.session.begin()
        elif self.phase is Phase.SWEEP:
            self.session.finish_sweep()
        elif self.phase is Phase.REVIEW:
            self.session.write()
        elif self.phase is Phase.WRITTEN:
            self.session.save()

    def action_restart(self) -> None:
        if self.phase in (Phase.FAILED, Phase.CONNECTING) or self.session is None:
            self._connect()
        else:
            self.session.restart()

    def action_toggle_auto(self) -> None:
        if self.phase not in (Phase.CENTRE, Phase.FAILED, Phase.SAVED):
            self.notify("finish or restart this calibration first", severity="warning")
            return
        self.auto = not self.auto
        self._connect()
