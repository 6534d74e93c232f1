"""Start screen: ports, robots, calibration profiles, recipes; keys open the other screens."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from edgevla.tui.inventory import Inventory, take_inventory


class StartScreen(Screen):
    BINDINGS = [
        Binding("c", "calibrate", "Calibrate"),
        Binding("m", "motors", "Motors"),
        Binding("t", "recipes", "Recipes"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def __init__(self, inventory: Inventory | None = None, named_ports: tuple[str, ...] = ()):
        super().__init__()
        self.fixed_inventory = inventory  # tests and screenshots pass fixed data
        self.named_ports = named_ports  # `edgevla tui --port`: listed first

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="start-grid"):
            for key, title, columns in (
                ("ports", "Serial ports", ("port", "adapter", "warning")),
                ("robots", "Robots (hardware/)", ("robot", "role", "motors", "description")),
                ("profiles", "Calibration profiles", ("profile", "contents")),
                ("recipes", "Training recipes", ("recipe", "GPU memory", "file")),
            ):
                with Vertical(classes="start-panel"):
                    yield Label(title, classes="panel-title")
                    table = DataTable(id=key, cursor_type="row", zebra_stripes=True)
                    table.add_columns(*columns)
                    yield table
        yield Static(id="start-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "edgevla"
        self.sub_title = "start"
        self.action_refresh()

    def action_refresh(self) -> None:
        inventory = self.fixed_inventory or take_inventory(self.named_ports)
        ports = self.query_one("#ports", DataTable)
        ports.clear()
        for port in inventory.ports:
            ports.add_row(port.device, port.adapter, port.warning or "ok", key=port.device)
        robots = self.query_one("#robots", DataTable)
        robots.clear()
        for robot in inventory.robots:
            robots.add_row(robot.name, robot.role, str(robot.motors), robot.description, key=robot.name)
        profiles = self.query_one("#profiles", DataTable)
        profiles.clear()
        for profile in inventory.profiles:
            profiles.add_row(profile.name, profile.summary, key=str(profile.path))
        recipes = self.query_one("#recipes", DataTable)
        recipes.clear()
        for recipe in inventory.recipes:
            recipes.add_row(recipe.name, recipe.memory, recipe.path.name, key=str(recipe.path))
        hint = (
            "Pick a port and a robot (Tab moves between tables), then c calibrates. "
            "No arm? Serve a virtual one:  edgevla firmware serve --robot so101_leader "
            "--link /tmp/edgevla-leader --motion sweep"
        )
        if not inventory.ports:
            hint = "No serial port found. " + hint
        self.query_one("#start-hint", Static).update(hint)

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_calibrate(self) -> None:
        port, robot = self._selected("ports"), self._selected("robots")
        if port is None or robot is None:
            self.notify("pick a serial port and a robot first", severity="warning")
            return
        self.app.open_calibration(robot, port)

    def action_motors(self) -> None:
        port = self._selected("ports")
        if port is None:
            self.notify("pick a serial port first", severity="warning")
            return
        self.app.open_motors(port, self._selected("robots"))

    def action_recipes(self) -> None:
        self.app.open_recipes()
