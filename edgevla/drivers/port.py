"""Serial ports for the vendor SDKs: any pyserial URL, a timeout we choose, no busy-waiting.

Both SDKs open `serial.Serial(path)` with `timeout=0` and spin on `read()` until a status packet
is complete or 2 x LATENCY_TIMER + 2 ms (34 ms) pass. `UrlPort` is mixed into their
`PortHandler`s and changes only how the port is opened and waited on:
- `serial.serial_for_url`, so `socket://host:port` and `loop://` work as well as device paths;
- a short read timeout, so a read blocks in select() (releasing the GIL) until the bytes the
  SDK asked for arrive, instead of spinning;
- the input buffer is cleared before every instruction, so a reply that arrived after its
  timeout is never taken for the answer to the next request;
- the status timeout is `timeout_ms` plus the bytes' time on the wire, set per bus;
- a port that fails mid-transaction (adapter unplugged, pty or socket closed) raises
  `PortError` naming it, instead of pyserial's or termios' own errors escaping the SDK.
"""

from __future__ import annotations

import os
import termios

import serial

from edgevla.drivers.errors import PortError

# what pyserial and the tty layer raise when the device goes away under an open port
LINK_ERRORS = (serial.SerialException, OSError, termios.error)
READ_SLICE_S = 0.002  # longest a single read() blocks; the SDK re-checks its own timeout after


class UrlPort:
    """Mixin for `scservo_sdk.PortHandler` / `dynamixel_sdk.PortHandler` (put it first)."""

    timeout_ms: float = 20.0

    def setupPort(self, cflag_baud):  # noqa: N802 (SDK method name)
        if self.is_open:
            self.closePort()
        self.ser = serial.serial_for_url(
            self.port_name, baudrate=self.baudrate, bytesize=serial.EIGHTBITS, timeout=READ_SLICE_S
        )
        self.is_open = True
        self.ser.reset_input_buffer()
        self.tx_time_per_byte = (1000.0 / self.baudrate) * 10.0
        return True

    def getCFlagBaud(self, baudrate):  # noqa: N802
        # The servo model's baud table is checked before opening; pyserial and the OS judge the rest.
        return baudrate if baudrate > 0 else -1

    def clearPort(self):  # noqa: N802 (the SDKs call it right before writing an instruction)
        try:
            self.ser.reset_input_buffer()
        except LINK_ERRORS as err:
            raise self._lost(err) from None

    def readPort(self, length):  # noqa: N802
        try:
            return self.ser.read(length)
        except LINK_ERRORS as err:
            raise self._lost(err) from None

    def writePort(self, packet):  # noqa: N802
        try:
            return self.ser.write(packet)
        except LINK_ERRORS as err:
            raise self._lost(err) from None

    def _lost(self, err: Exception) -> PortError:
        self.is_using = False  # the SDK's transaction never finishes: free the port for the next
        return PortError(
            f"serial port '{self.port_name}' failed mid-transaction ({err}); "
            "is the adapter still plugged in and powered?"
        )

    def setPacketTimeout(self, packet_length):  # noqa: N802
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + self.timeout_ms


def open_port(port_class: type, url: str, baudrate: int, timeout_ms: float) -> UrlPort:
    """An open SDK port handler on `url` at `baudrate`, or a PortError naming what failed."""
    if "://" not in url and not os.path.exists(url):
        raise PortError(f"serial port '{url}' does not exist; is the adapter plugged in? (ls /dev/tty*)")
    port = port_class(url)
    port.timeout_ms = timeout_ms
    port.baudrate = baudrate
    try:
        port.setupPort(baudrate)
    except (serial.SerialException, ValueError, OSError) as err:
        raise PortError(f"cannot open serial port '{url}' at {baudrate} baud: {err}") from None
    return port


def set_baudrate(port: UrlPort, baudrate: int) -> None:
    try:
        port.ser.baudrate = baudrate
    except (serial.SerialException, ValueError, OSError) as err:
        raise PortError(f"serial port '{port.port_name}' refuses {baudrate} baud: {err}") from None
    port.baudrate = baudrate
    port.tx_time_per_byte = (1000.0 / baudrate) * 10.0


def is_pseudo_terminal(port: str) -> bool:
    """Whether `port` is (a link to) a pseudo-terminal: a virtual arm, never a servo adapter."""
    return os.path.realpath(port).startswith("/dev/pts/")
