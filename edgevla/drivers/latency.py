"""USB-serial latency timer check (Linux).

FTDI adapters hold received bytes up to `latency_timer` ms (default 16) before passing them to
the host, which turns a 1 ms servo read into ~16 ms. 1 ms is what servo vendors advise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LIMIT_MS = 1


@dataclass(frozen=True)
class LatencyReport:
    device: str  # ttyUSB0
    latency_ms: int | None  # None: no latency_timer for this device (not a usb-serial adapter)

    @property
    def too_high(self) -> bool:
        return self.latency_ms is not None and self.latency_ms > LIMIT_MS

    def advice(self) -> str:
        return (
            f"{self.device}: USB-serial latency timer is {self.latency_ms} ms (want {LIMIT_MS}); every servo "
            f"read waits that long. Fix now: echo 1 | sudo tee /sys/bus/usb-serial/devices/{self.device}/"
            "latency_timer; for good: the udev rule in docs/HARDWARE.md"
        )


def check_latency(port: str, sysfs: Path = Path("/sys")) -> LatencyReport | None:
    """The latency timer of the adapter behind `port` (symlinks such as /dev/serial/by-id/...
    are resolved), or None for URLs and ports that are not USB-serial devices."""
    if "://" in port:
        return None
    device = Path(os.path.realpath(port)).name
    timer = sysfs / "bus" / "usb-serial" / "devices" / device / "latency_timer"
    try:
        return LatencyReport(device, int(timer.read_text().strip()))
    except (OSError, ValueError):
        return None
