"""Serve a virtual bus on a pseudo-terminal, so any program can open it as a serial port.

The pty is put in raw mode (no echo, no line editing, no CR/LF mapping) so bytes pass
untouched. The host's baud rate is the speed it set on the pty with termios (pyserial does this
on open): on Linux an ioctl(TCGETS2) on the master side returns the slave's termios including
custom rates (BOTHER, e.g. 250000), so the firmware knows the rate the host "talks" at and
servos configured for another rate stay silent, as on a real bus.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
import threading
import time
import tty
from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.firmware.bus import VirtualBus

# _IOR('T', 0x2A, struct termios2): the same number on x86_64 and aarch64 Linux.
TCGETS2 = 0x802C542A
TERMIOS2 = struct.Struct("IIIIB19sII")  # iflag oflag cflag lflag line cc[19] ispeed ospeed


def host_baudrate(master_fd: int) -> int | None:
    """The output speed the host set on the pty, in bits/s; None where the OS cannot tell."""
    if not sys.platform.startswith("linux"):
        return None
    buf = bytearray(TERMIOS2.size)
    try:
        fcntl.ioctl(master_fd, TCGETS2, buf)
    except OSError:
        return None
    return TERMIOS2.unpack(bytes(buf))[-1]


class PtyServer:
    """Owns the pty and the thread that answers on it; `close()` removes the link."""

    def __init__(self, bus: VirtualBus, link: str | Path | None = None, check_baud: bool = True):
        self.bus = bus
        self.check_baud = check_baud
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        # A host that stops reading must not stall the firmware: like a USB adapter's full
        # buffer, what does not fit is lost (counted in bus.stats.overflowed).
        os.set_blocking(self.master, False)
        self.device = os.ttyname(self._slave)
        self.link = Path(link) if link else None
        if self.link is not None:
            self._make_link(self.link)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"firmware-{self.port}", daemon=True)
        self.error: BaseException | None = None

    @property
    def port(self) -> str:
        """What a host opens: the link if one was asked for, else the pty's own device path."""
        return str(self.link) if self.link is not None else self.device

    def _make_link(self, link: Path) -> None:
        if link.is_symlink():
            link.unlink()  # a stale link from a run that was killed
        elif link.exists():
            self._close_fds()
            raise EdgevlaError(
                f"--link {link}: a file that is not a symlink is in the way; remove it or pick another path"
            )
        try:
            link.symlink_to(self.device)
        except OSError as err:
            self._close_fds()
            raise EdgevlaError(f"--link {link}: cannot create the symlink: {err.strerror}") from None

    def start(self) -> PtyServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            while True:
                ready = self.bus.wait_for_host([self.master, self._stop_r])
                if self._stop_r in ready:
                    return
                try:
                    data = os.read(self.master, 4096)
                except BlockingIOError:
                    continue
                except OSError:  # EIO while no host holds the slave open on some kernels
                    time.sleep(0.01)
                    continue
                baud = host_baudrate(self.master) if self.check_baud else None
                for tx in self.bus.receive(data, baud):
                    tx.wait()
                    self._send(tx.packet)
        except BaseException as err:  # surfaced by close(); a dead server thread must not go unnoticed
            self.error = err

    def _send(self, packet: bytes) -> None:
        try:
            sent = os.write(self.master, packet)
        except (BlockingIOError, OSError):
            sent = 0
        if sent < len(packet):
            self.bus.stats.overflowed += 1

    def close(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.device:
            self.link.unlink()
        self._close_fds()
        if self.error is not None:
            raise RuntimeError(f"virtual firmware on {self.port} stopped: {self.error!r}") from self.error

    def _close_fds(self) -> None:
        for fd in ("master", "_slave", "_stop_r", "_stop_w"):
            value = getattr(self, fd, None)
            if value is not None:
                with contextlib.suppress(OSError):
                    os.close(value)
                setattr(self, fd, None)
