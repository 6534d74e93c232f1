"""edgevla's driver and the unmodified vendor SDKs see the same servo state over the same pty."""

from __future__ import annotations

import dynamixel_sdk as dxl
import scservo_sdk as scs

from tests.waiting import wait_until

from .helpers import open_sdk_port, sdk_read, sdk_write

REGISTERS = [
    "Model_Number",
    "ID",
    "Baud_Rate",
    "Return_Delay_Time",
    "Min_Position_Limit",
    "Max_Position_Limit",
    "Homing_Offset",
    "Torque_Enable",
    "Goal_Position",
    "Present_Position",
    "Present_Temperature",
]


def sdk_values(arm, registers):
    """{joint: {register: signed value}} read register by register with the vendor SDK."""
    robot = arm.robot
    port, ph = open_sdk_port(robot.vendor, arm.port, robot.baudrate)
    try:
        out = {}
        for m in robot.motors:
            out[m.name] = {}
            for name in registers:
                reg = m.servo.register(name)
                out[m.name][name] = reg.decode(sdk_read(robot.vendor, port, ph, m.id, reg.address, reg.size))
        return out
    finally:
        port.closePort()


def test_single_and_sync_reads_agree_with_sdk(bus_on):
    arm, bus = bus_on
    # a non-trivial state: negative homing offsets (sign-magnitude / two's complement) and moved goals
    for i, name in enumerate(bus.motors):
        bus.write_settings(name, {"Homing_Offset": -37 * (i + 1)})
        bus.write("Goal_Position", name, 1500 + 100 * i)
    ours = {name: {reg: bus.read(reg, name) for reg in REGISTERS} for name in bus.motors}
    synced = {reg: bus.sync_read(reg) for reg in ("Present_Position", "Goal_Position", "Homing_Offset")}
    bus.close()
    theirs = sdk_values(arm, REGISTERS)
    # Present_Temperature moves slowly with load; everything else must match exactly
    for name in ours:
        for reg in REGISTERS:
            if reg != "Present_Temperature":
                assert ours[name][reg] == theirs[name][reg], (name, reg)
        assert abs(ours[name]["Present_Temperature"] - theirs[name]["Present_Temperature"]) <= 1
        assert ours[name]["Homing_Offset"] < 0
        for reg, values in synced.items():
            assert values[name] == theirs[name][reg], (name, reg)
    expected_model = {"feetech": 777}.get(arm.robot.vendor)
    if expected_model:
        assert {v["Model_Number"] for v in ours.values()} == {expected_model}


def test_sdk_sync_read_matches_edgevla_sync_read(bus_on):
    arm, bus = bus_on
    for i, name in enumerate(bus.motors):
        bus.write("Torque_Enable", name, 1)
        bus.write("Goal_Position", name, 1800 + 60 * i)
    goals = [1800 + 60 * i for i in range(len(bus.motors))]
    assert wait_until(lambda: arm.bus.positions() == goals)
    ours = bus.sync_read("Present_Position")
    bus.close()
    robot = arm.robot
    port, ph = open_sdk_port(robot.vendor, arm.port, robot.baudrate)
    reg = robot.motors[0].servo.register("Present_Position")
    if robot.vendor == "feetech":
        group = scs.GroupSyncRead(port, ph, reg.address, reg.size)
        success = scs.COMM_SUCCESS
    else:
        group = dxl.GroupSyncRead(port, ph, reg.address, reg.size)
        success = dxl.COMM_SUCCESS
    for m in robot.motors:
        group.addParam(m.id)
    for _ in range(5):
        port.ser.reset_input_buffer()
        if group.txRxPacket() == success:
            break
    theirs = {m.name: reg.decode(group.getData(m.id, reg.address, reg.size)) for m in robot.motors}
    port.closePort()
    assert ours == theirs
    assert ours["gripper"] == arm.bus.servo("gripper").present_position


def test_sdk_writes_are_what_edgevla_reads(bus_on):
    arm, bus = bus_on
    robot = arm.robot
    bus.close()
    port, ph = open_sdk_port(robot.vendor, arm.port, robot.baudrate)
    motor = robot.motor("wrist_flex")
    reg = motor.servo.register("Homing_Offset")
    sdk_write(robot.vendor, port, ph, motor.id, reg.address, reg.size, reg.encode(-123))
    goal = motor.servo.register("Goal_Position")
    sdk_write(robot.vendor, port, ph, motor.id, goal.address, goal.size, 3000)
    port.closePort()
    bus.open()
    assert bus.read("Homing_Offset", "wrist_flex") == -123
    assert bus.read("Goal_Position", "wrist_flex") == 3000
    assert bus.sync_read("Homing_Offset")["wrist_flex"] == -123
