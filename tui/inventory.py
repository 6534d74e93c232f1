"""What the start screen lists: serial ports (with adapter and latency timer), robot
definitions, calibration profiles and training recipes found on this machine."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from serial.tools import list_ports

from edgevla.drivers.calibration import load_calibration
from edgevla.drivers.latency import check_latency
from edgevla.errors import EdgevlaError
from edgevla.hardware import list_robots, load_robot
from edgevla.paths import calibration_dir, recipes_dir

VIRTUAL_LINKS = "/tmp/edgevla*"  # where `edgevla firmware serve --link` users usually put arms


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


def find_ports() -> list[PortInfo]:
    ports = []
    for info in list_ports.comports():
        if info.vid is None and not info.device.startswith(("/dev/ttyACM", "/dev/ttyUSB")):
            continue  # motherboard UARTs (ttyS*): never a servo adapter
        adapter = " ".join(p for p in (info.manufacturer, info.product or info.description) if p)
        if info.vid is not None:
            adapter += f" [{info.vid:04x}:{info.pid:04x}]"
        report = check_latency(info.device)
        ports.append(PortInfo(info.device, adapter, report.advice() if report and report.too_high else ""))
    for link in sorted(glob.glob(VIRTUAL_LINKS)):
        if os.path.islink(link) and os.path.realpath(link).startswith("/dev/pts/"):
            ports.append(PortInfo(link, f"pseudo-terminal {os.path.realpath(link)} (virtual firmware?)"))
    return ports


def find_robots() -> list[RobotInfo]:
    robots = []
    for name in list_robots():
        robot = load_robot(name)
        robots.append(RobotInfo(robot.name, robot.role, len(robot.motors), robot.description))
    return robots


def find_profiles(directory: Path | None = None) -> list[ProfileInfo]:
    profiles = []
    for path in sorted((directory or calibration_dir()).glob("*.json")):
        try:
            summary = f"{len(load_calibration(path))} joints"
        except EdgevlaError as err:
            summary = f"does not load: {err}"
        profiles.append(ProfileInfo(path.stem, path, summary))
    return profiles


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


def take_inventory() -> Inventory:
    return Inventory(find_ports(), find_robots(), find_profiles(), find_recipes())
