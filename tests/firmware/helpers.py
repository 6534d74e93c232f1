"""Helpers for the virtual firmware tests: vendor SDK calls robust to a loaded machine."""

from __future__ import annotations

import time
from collections.abc import Callable

import dynamixel_sdk as dxl
import scservo_sdk as scs


def sdk_call(port, call: Callable, *args, attempts: int = 4):
    """Run an unmodified vendor SDK call, retrying when no status packet arrived in time.

    The firmware thread shares a busy 2-core box with the SDK's busy-wait loop; now and then it
    answers after the SDK's ~34 ms timeout. A late reply would then be read as the answer to the
    next request (the SDKs never clear their input), so every try starts with an empty buffer.
    Any other result (an error status, a corrupt packet) is returned as is."""
    timeouts = (scs.COMM_RX_TIMEOUT, dxl.COMM_RX_TIMEOUT)
    for _ in range(attempts):
        port.ser.reset_input_buffer()
        result = call(port, *args)
        comm = _comm_result(result)
        if comm not in timeouts:
            return result
        time.sleep(0.01)
    return result


def open_port(handler_cls, path: str, baud: int):
    port = handler_cls(path)
    assert port.openPort()
    assert port.setBaudRate(baud)
    return port


def _comm_result(result) -> int:
    """The communication result of any SDK call: int, (value, comm, error), (comm, error), (dict, comm)."""
    if isinstance(result, int):
        return result
    if len(result) == 3:
        return result[1]
    return result[0] if isinstance(result[0], int) else result[1]
