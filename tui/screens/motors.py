"""Motors screen: scan a port at every baud rate, toggle torque, jog one motor, set up new ones.

Bus jobs run in a worker thread (one at a time); results and errors come back as table rows
and status lines. Motor setup goes one joint at a time: the screen says which servo to connect
alone, Enter assigns it the joint's id and the robot's baud rate.
"""

from __future__ import annotations

import serial
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from edgevla.drivers.bus import BusConfig
from edgevla.errors import EdgevlaError
from edgevla.hardware import RobotDef
from edgevla.tui import motor_ops

COLUMNS = ("id", "model", "firmware", "baud", "voltage", "temp °C", "torque", "errors")


class MotorsScreen(Screen):
    BINDINGS = [
        Binding("s", "scan", "Scan"),
        Binding("t", "torque", "Torque on/off"),
        Binding("left", "jog(-1)", "Jog -"),
        Binding("right", "jog(1)", "Jog +"),
        Binding("n", "setup", "Set up motors"),
        Binding("enter", "setup_next", "Setup: next", show=False, priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, port: str, robot: RobotDef, bus_config: BusConfig | None = None):
        super().__init__()
        self.port, self.robot, self.bus_config = port, robot, bus_config
        self.rows: list[motor_ops.MotorRow] = []
        self.setup_joint: int | None = None  # index of the joint whose servo is awaited
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"[b]{self.port}[/b] · {self.robot.name} ({self.robot.vendor})", id="motors-target")
        table = DataTable(id="motor-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("s scans the port at every baud rate.", id="motors-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "edgevla · motors"

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#motors-status", Static)
        status.update(text)
        status.set_class(error, "error")

    def _selected_id(self) -> int | None:
        table = self.query_one("#motor-table", DataTable)
        if not table.row_count:
            self._status("no motor listed: scan first (s)", error=True)
            return None
        return self.rows[table.cursor_row].id

    # --- bus jobs (one thread at a time) ----------------------------------------------------

    @work(thread=True, exclusive=True, group="bus")
    def _job(self, describe: str, job, done=None) -> None:
        self.app.call_from_thread(self._status, f"{describe}…")
        try:
            result = job()
        except (EdgevlaError, serial.SerialException, OSError) as err:
            self.app.call_from_thread(self._status, f"{describe} failed: {err}", True)
            return
        if done:
            self.app.call_from_thread(done, result)

    def action_scan(self) -> None:
        servo = self.robot.motors[0].servo
        self._job(
            f"scanning {self.port} for {servo.vendor} servos",
            lambda: motor_ops.scan(self.port, servo, config=self.bus_config),
            self._show_rows,
        )

    def _show_rows(self, rows: list[motor_ops.MotorRow]) -> None:
        self.rows = rows
        table = self.query_one("#motor-table", DataTable)
        picked = table.cursor_row  # keep the picked motor picked across a refresh
        table.clear()
        for row in rows:
            table.add_row(
                str(row.id),
                str(row.model),
                row.firmware,
                str(row.baud),
                "-" if row.voltage_v is None else f"{row.voltage_v:.1f} V",
                "-" if row.temperature_c is None else str(row.temperature_c),
                "on" if row.torque else "off",
                row.errors,
            )
        table.move_cursor(row=min(picked, max(len(rows) - 1, 0)))
        self._status(
            f"{len(rows)} servo(s) found on {self.port}" if rows else f"no servo answers on {self.port}"
        )

    def action_torque(self) -> None:
        motor_id = self._selected_id()
        if motor_id is None:
            return
        row = next(r for r in self.rows if r.id == motor_id)
        on = not row.torque

        def toggle():
            motor_ops.set_torque(self.port, self.robot, motor_id, on, self.bus_config)
            return motor_ops.scan(self.port, self.robot.motors[0].servo, config=self.bus_config)

        self._job(f"torque {'on' if on else 'off'} for id {motor_id}", toggle, self._show_rows)

    def action_jog(self, direction: int) -> None:
        motor_id = self._selected_id()
        if motor_id is None:
            return
        self._job(
            f"jogging id {motor_id}",
            lambda: motor_ops.jog(self.port, self.robot, motor_id, direction, self.bus_config),
            lambda goal: self._status(f"id {motor_id}: goal {goal} (torque on; t turns it off)"),
        )

    # --- motor setup ------------------------------------------------------------------------

    def action_setup(self) -> None:
        self.setup_joint = 0
        self._prompt_setup()

    def _prompt_setup(self) -> None:
        joint = self.robot.motors[self.setup_joint]
        self._status(
            f"Setup {self.setup_joint + 1}/{len(self.robot.motors)}: connect ONLY the '{joint.name}' servo "
            f"to the bus, then press Enter (it becomes id {joint.id} at {self.robot.baudrate} baud). "
            "Escape stops."
        )

    def action_setup_next(self) -> None:
        if self.setup_joint is None:
            return
        joint = self.robot.motors[self.setup_joint].name
        self._job(
            f"setting up '{joint}'",
            lambda: motor_ops.setup_motor(self.port, self.robot, joint, self.bus_config),
            self._setup_done,
        )

    def _setup_done(self, old: tuple[int, int]) -> None:
        motor = self.robot.motors[self.setup_joint]
        done = f"'{motor.name}': id {old[0]} at {old[1]} baud -> id {motor.id} at {self.robot.baudrate} baud."
        self.setup_joint += 1
        if self.setup_joint == len(self.robot.motors):
            self.setup_joint = None
            self._status(f"{done} Every motor is set up; connect them all and scan (s).")
            return
        self._prompt_setup()
        self._status(f"{done} " + str(self.query_one("#motors-status", Static).render()))

    def action_back(self) -> None:
        if self.setup_joint is not None:
            self.setup_joint = None
            self._status("motor setup stopped")
            return
        self.app.pop_screen()
