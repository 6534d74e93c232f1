"""`EdgevlaApp`: the Textual app of `edgevla tui`. It only knows its screens and global keys."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from edgevla.drivers.bus import BusConfig
from edgevla.drivers.calibration import profile_path
from edgevla.hardware import load_robot, load_robot_pair
from edgevla.tui.commands import ScreenCommands
from edgevla.tui.inventory import Inventory
from edgevla.tui.screens.calibration import CalibrationScreen
from edgevla.tui.screens.help import HelpScreen
from edgevla.tui.screens.start import StartScreen

STYLES = Path(__file__).parent / "styles"


class EdgevlaApp(App):
    TITLE = "edgevla"
    CSS_PATH = [
        STYLES / "app.tcss",
        STYLES / "calibration.tcss",
        STYLES / "start.tcss",
        STYLES / "recipes.tcss",
    ]
    COMMANDS = App.COMMANDS | {ScreenCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        robot: str | None = None,
        port: str | None = None,
        calibration_out: Path | None = None,
        auto: bool = False,
        bus_config: BusConfig | None = None,
        inventory: Inventory | None = None,
        compare: tuple[str, str, str] | None = None,
        arm_id: str | None = None,
        ports: tuple[str, ...] = (),
    ):
        """`inventory`: fixed start-screen contents (screenshots, tests); default: this machine's.
        `arm_id`: which arm a calibration is of (default: the robot's name; see
        `edgevla.drivers.calibration.profile_path`). `ports`: listed on the start screen even
        where it would not look (a serial device or URL of the user's choice)."""
        super().__init__()
        self.inventory = inventory
        self.compare = compare  # (pair, leader port, follower port): open the comparison first
        self.robot_name, self.port, self.auto = robot, port, auto
        self.calibration_out, self.bus_config = calibration_out, bus_config
        self.arm_id, self.ports = arm_id, ports

    def on_mount(self) -> None:
        self.push_screen(StartScreen(self.inventory, self.ports))
        if self.robot_name and self.port:
            self.open_calibration(self.robot_name, self.port)
        if self.compare:
            self.open_compare(*self.compare)

    def open_calibration(self, robot_name: str, port: str) -> None:
        robot = load_robot(robot_name)
        out = self.calibration_out or profile_path(robot, self.arm_id)
        self.push_screen(CalibrationScreen(robot, port, out, auto=self.auto, bus_config=self.bus_config))

    def open_compare(self, pair: str, leader_port: str, follower_port: str) -> None:
        from edgevla.tui.screens.compare import CompareScreen

        leader, follower = load_robot_pair(pair)
        self.push_screen(CompareScreen(leader, leader_port, follower, follower_port, self.bus_config))

    def open_motors(self, port: str, robot_name: str | None) -> None:
        from edgevla.tui.screens.motors import MotorsScreen

        self.push_screen(MotorsScreen(port, load_robot(robot_name or "so101_follower"), self.bus_config))

    def open_recipes(self) -> None:
        from edgevla.tui.screens.recipes import RecipesScreen

        self.push_screen(RecipesScreen())

    def action_start(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
