"""`edgevla firmware serve` in its own process, started and waited for in one place.

A virtual arm served from another process shares no GIL with the program that talks to it, so
its replies keep the timing of a real bus (benchmarks, recording, the TUI tests). The server
prints `ready PORT` on stdout once it answers. What it says on stderr goes to a temporary file,
not a pipe: a pipe nobody reads fills up and stalls the server; the file is quoted when the
server fails to start.

    with served_firmware("so101_leader", "--motion", "sweep", link=tmp / "leader") as arm:
        ...open arm.port...
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edgevla.errors import EdgevlaError

READY = "ready "


@dataclass
class FirmwareProcess:
    """A running `edgevla firmware serve`: `port` is what a host opens (the link when given)."""

    robot: str
    port: str
    process: subprocess.Popen
    log: IO[str]

    def stderr_text(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server removes its link and exits 0), SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()
        self.process.stdout.close()
        self.log.close()


def firmware_command(robot: str, *options: str, link: str | Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "edgevla", "firmware", "serve", "--robot", robot]
    return command + (["--link", str(link)] if link else []) + list(options)


def start_firmware(
    robot: str,
    *options: str,
    link: str | Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = 30.0,
) -> FirmwareProcess:
    """Start the server and return once it printed its ready line; `options` are more
    `firmware serve` arguments (`--motion sweep`, `--drop 0.01`, ...). `stdin=subprocess.PIPE`
    lets a caller type `plug` commands to a `--fresh` arm. Raises EdgevlaError, with the
    server's last line, when it exits or stays silent for `timeout` seconds."""
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 -- FirmwareProcess.stop() closes it
    process = subprocess.Popen(
        firmware_command(robot, *options, link=link),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    firmware = FirmwareProcess(robot, "", process, log)
    try:
        firmware.port = _ready_port(firmware, timeout)
    except BaseException:
        process.kill()
        firmware.stop()
        raise
    return firmware


@contextmanager
def served_firmware(
    robot: str,
    *options: str,
    link: str | Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = 30.0,
) -> Iterator[FirmwareProcess]:
    """`start_firmware` for the duration of a `with` block."""
    firmware = start_firmware(robot, *options, link=link, stdin=stdin, timeout=timeout)
    try:
        yield firmware
    finally:
        firmware.stop()


def _ready_port(firmware: FirmwareProcess, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    stdout = firmware.process.stdout
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([stdout], [], [], remaining)[0]:
            continue
        line = stdout.readline()
        if line.startswith(READY):
            return line[len(READY) :].strip()
        if not line:  # stdout closed: the server ended before it was ready
            code = firmware.process.wait()
            said = firmware.stderr_text().strip().splitlines()
            raise EdgevlaError(
                f"the virtual firmware for '{firmware.robot}' exited ({code}): "
                + (said[-1] if said else "it said nothing")
            )
    raise EdgevlaError(f"the virtual firmware for '{firmware.robot}' was not ready within {timeout:g} s")
