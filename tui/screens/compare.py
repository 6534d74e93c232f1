"""Leader and follower side by side, in calibrated units, to check that they agree before
teleoperation. Both arms are read through the driver's `Robot` (torque off) in a worker thread."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from edgevla.drivers.bus import BusConfig
from edgevla.drivers.robot import Robot
from edgevla.hardware import RobotDef
from edgevla.tui.calibration_session import BUS_FAILURES

AGREE = 5.0  # normalised units (of -100..100): more apart than this is flagged
PERIOD_S = 0.05


class PairRead(Message):
    def __init__(self, leader: np.ndarray | None, follower: np.ndarray | None, error: str = ""):
        super().__init__()
        self.leader, self.follower, self.error = leader, follower, error


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(
        self,
        leader: RobotDef,
        leader_port: str,
        follower: RobotDef,
        follower_port: str,
        bus_config: BusConfig | None = None,
    ):
        super().__init__()
        self.arms = ((leader, leader_port), (follower, follower_port))
        self.bus_config = bus_config
        self.last: PairRead | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="compare", daemon=True)

    def compose(self) -> ComposeResult:
        yield Header()
        (leader, lport), (follower, fport) = self.arms
        yield Static(
            f"[b]{leader.name}[/b] on {lport}  vs  [b]{follower.name}[/b] on {fport}", id="compare-target"
        )
        yield Static(id="compare-table")
        yield Static(
            "Move the leader through its range: the follower's profile should read the same pose.",
            id="compare-status",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.title = "edgevla · leader vs follower"
        self._thread.start()

    def on_unmount(self) -> None:
        self._stop.set()
        self._thread.join(3.0)

    def _read(self) -> None:
        robots: list[Robot] = []
        try:
            robots = [Robot(d, port, bus_config=self.bus_config, torque=False) for d, port in self.arms]
            for robot in robots:
                robot.connect()
            while not self._stop.is_set():
                self.post_message(PairRead(robots[0].read_state(), robots[1].read_state()))
                time.sleep(PERIOD_S)
        except BUS_FAILURES as err:
            self.post_message(PairRead(None, None, f"{err}"))
        finally:
            for robot in robots:
                with contextlib.suppress(*BUS_FAILURES):  # already gone: nothing to release
                    robot.disconnect()

    def on_pair_read(self, message: PairRead) -> None:
        status = self.query_one("#compare-status", Static)
        if message.error:
            status.update(Text(f"stopped: {message.error}", style="bold red"))
            return
        self.last = message
        joints = self.arms[0][0].joint_names
        lines = Text(f"{'joint':<14}{'leader':>9}{'follower':>10}{'apart':>8}\n", style="bold")
        for joint, lead, follow in zip(joints, message.leader, message.follower, strict=True):
            apart = abs(float(lead) - float(follow))
            lines.append(f"{joint:<14}{lead:9.1f}{follow:10.1f}{apart:8.1f}")
            lines.append(
                "  ⚠ disagree" if apart > AGREE else "  ✓", style="bold red" if apart > AGREE else "green"
            )
            lines.append("\n")
        self.query_one("#compare-table", Static).update(lines)
