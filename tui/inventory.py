"""What the start screen lists: serial ports (with adapter and latency timer), robot
definitions, calibration profiles and training recipes found on this machine."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serial.tools import list_ports

from edgevla.drivers.calibration import load_calibration, user_profiles
from edgevla.drivers.latency import check_latency
from edgevla.drivers.port import is_pseudo_terminal
from edgevla.errors import EdgevlaError
from edgevla.firmware.registry import ServedPort, served_ports
from edgevla.hardware import list_robots, load_robot
from edgevla.paths import calibration_dir, recipes_dir

# USB-serial adapters, and the stable names docs/HARDWARE.md's udev rule gives them
DEVICE_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/edgevla-*")


@dataclass(frozen=True)
class PortInfo:
    device: str
    adapter: str  # USB adapter description, or what the port is
    warning: str = ""  # e.g. the latency-timer advice


@dataclass(frozen=True)
class RobotInfo:
    name: str
    role: str
    motors: int
    description: str


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    path: Path
    summary: str  # joints, or why the file does not load


@dataclass(frozen=True)
class RecipeInfo:
    name: str
    path: Path
    memory: str  # measured GPU memory, or the validation error
    valid: bool = True


@dataclass(frozen=True)
class Inventory:
    ports: list[PortInfo]
    robots: list[RobotInfo]
    profiles: list[ProfileInfo]
    recipes: list[RecipeInfo]


def find_ports(named: Sequence[str] = ()) -> list[PortInfo]:
    """`named` (the user's `--port`s) first, then USB-serial adapters, the device patterns and
    the virtual arms serving on this machine (edgevla.firmware.registry), each once."""
    virtual = {served.port: served for served in served_ports()}
    found = {port: _describe(port, virtual) for port in named}
    for info in list_ports.comports():
        if info.vid is None and not info.device.startswith(("/dev/ttyACM", "/dev/ttyUSB")):
            continue  # motherboard UARTs (ttyS*): never a servo adapter
        adapter = " ".join(p for p in (info.manufacturer, info.product or info.description) if p)
        if info.vid is not None:
            adapter += f" [{info.vid:04x}:{info.pid:04x}]"
        found.setdefault(info.device, PortInfo(info.device, adapter, _latency_advice(info.device)))
    for device in sorted(path for pattern in DEVICE_PATTERNS for path in glob.glob(pattern)):
        found.setdefault(device, _describe(device, virtual))
    for port in virtual:
        found.setdefault(port, _describe(port, virtual))
    return list(found.values())


def _describe(port: str, virtual: dict[str, ServedPort]) -> PortInfo:
    if port in virtual:
        return PortInfo(port, f"virtual {virtual[port].robot} (pseudo-terminal {virtual[port].device})")
    if is_pseudo_terminal(port):
        return PortInfo(port, f"pseudo-terminal {os.path.realpath(port)}")
    if "://" in port:
        return PortInfo(port, "pyserial URL")
    if os.path.islink(port):
        adapter = f"link to {os.path.realpath(port)}"
    else:
        adapter = "serial device" if os.path.exists(port) else "not present"
    return PortInfo(port, adapter, _latency_advice(port))


def _latency_advice(port: str) -> str:
    report = check_latency(port)
    return report.advice() if report and report.too_high else ""


def find_robots() -> list[RobotInfo]:
    robots = []
    for name in list_robots():
        robot = load_robot(name)
        robots.append(RobotInfo(robot.name, robot.role, len(robot.motors), robot.description))
    return robots


def find_profiles() -> list[ProfileInfo]:
    """The user's profiles (named by the arm, e.g. robots/so101_follower/my_arm), then the
    shipped read-only defaults."""
    named = [(_profile_name(path), path) for path in user_profiles()]
    named += [(f"{path.stem} (shipped)", path) for path in sorted(calibration_dir().glob("*.json"))]
    profiles = []
    for name, path in named:
        try:
            summary = f"{len(load_calibration(path))} joints"
        except EdgevlaError as err:
            summary = f"does not load: {err}"
        profiles.append(ProfileInfo(name, path, summary))
    return profiles


def _profile_name(path: Path) -> str:
    """robots/<robot>/<id> in lerobot's layout, the file's stem in a flat folder."""
    kind = path.parent.parent.name
    return f"{kind}/{path.parent.name}/{path.stem}" if kind in ("robots", "teleoperators") else path.stem


def find_recipes(directory: Path | None = None) -> list[RecipeInfo]:
    from edgevla.train.recipe import load_recipe  # yaml + dataclasses only: no torch

    recipes = []
    for path in sorted((directory or recipes_dir()).glob("*.yaml")):
        try:
            recipe = load_recipe(path)
            recipes.append(RecipeInfo(recipe.name, path, recipe.memory))
        except EdgevlaError as err:
            recipes.append(RecipeInfo(path.stem, path, str(err), valid=False))
    return recipes


def take_inventory(named_ports: Sequence[str] = ()) -> Inventory:
    return Inventory(find_ports(named_ports), find_robots(), find_profiles(), find_recipes())
