"""Snapshot tests (pytest-textual-snapshot) of every screen, on fixed data.

Update after an intended change of the look: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgevla.firmware import serve_robot
from edgevla.tui.app import EdgevlaApp
from edgevla.tui.calibration_session import Phase
from edgevla.tui.inventory import Inventory, PortInfo, ProfileInfo, RecipeInfo, RobotInfo
from edgevla.tui.screens.recipes import RecipesScreen

from .helpers import PATIENT, wait_for, write_correction_round

SIZE = (130, 36)
INVENTORY = Inventory(
    ports=[
        PortInfo("/dev/ttyACM0", "1a86 USB Single Serial [1a86:55d3]"),
        PortInfo(
            "/dev/ttyUSB0",
            "FTDI FT232R USB UART [0403:6001]",
            "ttyUSB0: USB-serial latency timer is 16 ms (want 1)",
        ),
        PortInfo("/tmp/edgevla-leader", "pseudo-terminal /dev/pts/3 (virtual firmware?)"),
    ],
    robots=[
        RobotInfo("so101_follower", "follower", 6, "SO-101 follower arm, 6x Feetech STS3215 at 1 Mbps"),
        RobotInfo("so101_leader", "leader", 6, "SO-101 leader arm, 6x Feetech STS3215 at 1 Mbps"),
    ],
    profiles=[ProfileInfo("so101_leader", Path("calibration/so101_leader.json"), "6 joints")],
    recipes=[RecipeInfo("small-cpu", Path("recipes/small-cpu.yaml"), "unmeasured")],
)
LINK = "/tmp/edgevla-snapshot-leader"  # fixed: the port is shown on the calibration screen
FOLLOWER_LINK = "/tmp/edgevla-snapshot-follower"
ROUND = Path("/tmp/edgevla-snapshot-round")  # fixed: the dataset path is shown in its input
REPO = Path(__file__).resolve().parents[2]


def test_start_screen(snap_compare):
    assert snap_compare(EdgevlaApp(inventory=INVENTORY), terminal_size=SIZE)


def test_help_screen(snap_compare):
    assert snap_compare(EdgevlaApp(inventory=INVENTORY), press=["question_mark"], terminal_size=SIZE)


def test_recipes_screen(snap_compare):
    recipe = Path(__file__).parent / "fixtures" / "lora-demo.yaml"
    fixed = [
        RecipeInfo("lora-demo", recipe, "9.8 GiB (measured on one GPU)"),
        RecipeInfo("broken", recipe, "broken.yaml: steps: must be > 0, got -3", valid=False),
    ]

    async def open_recipes(pilot):
        await pilot.app.push_screen(RecipesScreen(fixed))

    assert snap_compare(EdgevlaApp(inventory=INVENTORY), run_before=open_recipes, terminal_size=(150, 45))


def test_recipes_screen_on_a_correction_round(snap_compare):
    """The dataset's corrections summary and the training modes, DAgger picked."""
    shutil.rmtree(ROUND, ignore_errors=True)
    write_correction_round(ROUND)
    recipe = Path(__file__).parent / "fixtures" / "lora-demo.yaml"

    async def pick_round(pilot):
        screen = RecipesScreen([RecipeInfo("lora-demo", recipe, "9.8 GiB (measured on one GPU)")])
        await pilot.app.push_screen(screen)
        screen.query_one("#dataset").value = str(ROUND)
        await wait_for(pilot, lambda: screen.query_one("#corrections").display)
        screen.query_one("#corrections-mode").value = "dagger"
        await wait_for(pilot, lambda: "corrections:" in screen.query_one("#recipe-text").text)

    try:
        assert snap_compare(EdgevlaApp(inventory=INVENTORY), run_before=pick_round, terminal_size=(150, 45))
    finally:
        shutil.rmtree(ROUND, ignore_errors=True)


def test_motors_screen(snap_compare):
    async def open_motors(pilot):
        pilot.app.open_motors("/dev/ttyACM0", "so101_follower")
        await pilot.pause()

    assert snap_compare(EdgevlaApp(inventory=INVENTORY), run_before=open_motors, terminal_size=SIZE)


@pytest.fixture
def held_leader():
    """A leader nobody touches: its joints stay mid-range, so the values are fixed."""
    with serve_robot("so101_leader", link=LINK) as arm:
        yield arm


def test_calibration_screen(snap_compare, held_leader):
    app = EdgevlaApp(
        "so101_leader", LINK, calibration_out=Path("calibration/so101_leader.json"), bus_config=PATIENT
    )

    async def live_joints(pilot):
        screen = app.screen
        await wait_for(pilot, lambda: screen.phase is Phase.CENTRE and screen.last_sample is not None)
        screen.query_one("#rate").display = False  # the read rate varies from run to run

    assert snap_compare(app, run_before=live_joints, terminal_size=SIZE)


def test_compare_screen(snap_compare, held_leader, calibration_dir):
    """Both arms held still mid-range: fixed values, and they agree."""
    calibration_dir.mkdir(parents=True, exist_ok=True)
    for name in ("so101_leader", "so101_follower"):
        shutil.copy(REPO / "calibration" / f"{name}.json", calibration_dir)
    with serve_robot("so101_follower", link=FOLLOWER_LINK):
        app = EdgevlaApp(inventory=INVENTORY, bus_config=PATIENT, compare=("so101", LINK, FOLLOWER_LINK))

        async def both_read(pilot):
            await wait_for(pilot, lambda: getattr(app.screen, "last", None) is not None)

        assert snap_compare(app, run_before=both_read, terminal_size=SIZE)
