"""Helpers for the driver tests."""

from __future__ import annotations

import time

import dynamixel_sdk as dxl
import scservo_sdk as scs

from edgevla.drivers.bus import BusConfig

# One more retry than the driver's default; the status timeout comes from tests/conftest.py.
PATIENT = BusConfig(retries=4)

SDK = {
    "feetech": (scs.PortHandler, lambda: scs.PacketHandler(0), scs.COMM_SUCCESS, scs.COMM_RX_TIMEOUT),
    "dynamixel": (dxl.PortHandler, lambda: dxl.PacketHandler(2.0), dxl.COMM_SUCCESS, dxl.COMM_RX_TIMEOUT),
}


def sdk_read(vendor: str, port, ph, motor_id: int, address: int, size: int, attempts: int = 5) -> int:
    """Unsigned value of a register read with the unmodified vendor SDK (retrying its timeouts:
    on a loaded box the in-process firmware thread sometimes answers after the SDK gave up)."""
    read = {1: ph.read1ByteTxRx, 2: ph.read2ByteTxRx, 4: ph.read4ByteTxRx}[size]
    success = SDK[vendor][2]
    for _ in range(attempts):
        port.ser.reset_input_buffer()
        value, result, _ = read(port, motor_id, address)
        if result == success:
            return value
        time.sleep(0.01)
    raise AssertionError(f"SDK read of id {motor_id} @{address} failed: {ph.getTxRxResult(result)}")


def sdk_write(
    vendor: str, port, ph, motor_id: int, address: int, size: int, value: int, attempts: int = 5
) -> None:
    write = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx, 4: ph.write4ByteTxRx}[size]
    success = SDK[vendor][2]
    for _ in range(attempts):
        port.ser.reset_input_buffer()
        result, _ = write(port, motor_id, address, value)
        if result == success:
            return
        time.sleep(0.01)
    raise AssertionError(f"SDK write of id {motor_id} @{address} failed: {ph.getTxRxResult(result)}")


def open_sdk_port(vendor: str, path: str, baud: int):
    port = SDK[vendor][0](path)
    assert port.openPort() and port.setBaudRate(baud)
    return port, SDK[vendor][1]()
