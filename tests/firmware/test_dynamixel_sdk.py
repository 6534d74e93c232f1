"""The unmodified Dynamixel SDK (protocol 2.0) against the virtual XL330/XL430 firmware over a real pty."""

from __future__ import annotations

import dynamixel_sdk as dxl

from edgevla.firmware import serve_robot
from edgevla.firmware.dynamixel import ACCESS_ERROR, ALERT, DATA_LIMIT_ERROR
from edgevla.hardware import load_servo
from tests.waiting import wait_until

from .helpers import open_port, sdk_call

XL330 = load_servo("xl330-m288")
ADDR = {name: reg.address for name, reg in XL330.registers.items()}


def read(port, ph, servo_id, name):
    size = XL330.register(name).size
    call = {1: ph.read1ByteTxRx, 2: ph.read2ByteTxRx, 4: ph.read4ByteTxRx}[size]
    value, comm, error = sdk_call(port, call, servo_id, ADDR[name])
    assert comm == dxl.COMM_SUCCESS, ph.getTxRxResult(comm)
    return XL330.register(name).decode(value)


def write(port, ph, servo_id, name, value):
    reg = XL330.register(name)
    call = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx, 4: ph.write4ByteTxRx}[reg.size]
    comm, error = sdk_call(port, call, servo_id, reg.address, reg.encode(value))
    assert comm == dxl.COMM_SUCCESS, ph.getTxRxResult(comm)
    return error


def test_ping_returns_the_model_numbers_of_the_koch_follower(koch):
    arm, port, ph = koch
    models = [sdk_call(port, ph.ping, i)[:2] for i in range(1, 7)]
    assert models == [(1060, 0)] * 2 + [(1200, 0)] * 4  # XL430-W250 base, XL330-M288 wrist
    assert ph.ping(port, 7)[1] == dxl.COMM_RX_TIMEOUT


def test_broadcast_ping_lists_every_servo(koch):
    arm, port, ph = koch
    found, comm = ph.broadcastPing(port)
    assert comm == dxl.COMM_SUCCESS
    assert {i: model for i, (model, _fw) in found.items()} == {
        1: 1060,
        2: 1060,
        3: 1200,
        4: 1200,
        5: 1200,
        6: 1200,
    }


def test_goal_position_converges_with_homing_offset_added(koch):
    arm, port, ph = koch
    assert write(port, ph, 4, "Homing_Offset", 100) == 0  # torque off: EEPROM writable
    assert read(port, ph, 4, "Present_Position") == 2048 + 100  # Present = Actual + Homing_Offset
    write(port, ph, 4, "Torque_Enable", 1)
    write(port, ph, 4, "Goal_Position", 3000)
    assert wait_until(lambda: read(port, ph, 4, "Present_Position") == 3000)
    assert arm.bus.servo(4).actual == 2900
    assert read(port, ph, 4, "Moving") == 0


def test_eeprom_write_with_torque_on_is_an_access_error(koch):
    arm, port, ph = koch
    write(port, ph, 3, "Torque_Enable", 1)
    assert write(port, ph, 3, "Max_Position_Limit", 3000) == ACCESS_ERROR
    assert read(port, ph, 3, "Max_Position_Limit") == 4095
    write(port, ph, 3, "Torque_Enable", 0)
    assert write(port, ph, 3, "Max_Position_Limit", 3000) == 0
    assert read(port, ph, 3, "Max_Position_Limit") == 3000


def test_read_only_write_is_an_access_error(koch):
    arm, port, ph = koch
    assert write(port, ph, 5, "Present_Position", 7) == ACCESS_ERROR
    assert read(port, ph, 5, "Present_Position") == 2048


def test_goal_outside_the_position_limits_is_refused(koch):
    arm, port, ph = koch
    write(port, ph, 5, "Max_Position_Limit", 3000)
    assert write(port, ph, 5, "Goal_Position", 3500) == DATA_LIMIT_ERROR
    assert read(port, ph, 5, "Goal_Position") == 2048
    write(port, ph, 5, "Operating_Mode", 4)  # extended position: no limits but +-1048575
    assert write(port, ph, 5, "Goal_Position", 9000) == 0


def test_sync_write_sync_read_and_bulk_read(koch):
    arm, port, ph = koch
    torque = dxl.GroupSyncWrite(port, ph, ADDR["Torque_Enable"], 1)
    goals = dxl.GroupSyncWrite(port, ph, ADDR["Goal_Position"], 4)
    for i in range(1, 7):
        torque.addParam(i, [1])
        goals.addParam(i, list((1000 + 200 * i).to_bytes(4, "little")))
    assert torque.txPacket() == dxl.COMM_SUCCESS
    assert goals.txPacket() == dxl.COMM_SUCCESS
    expected = [1000 + 200 * i for i in range(1, 7)]

    reader = dxl.GroupSyncRead(port, ph, ADDR["Present_Position"], 4)
    for i in range(1, 7):
        reader.addParam(i)

    def arrived():
        assert sdk_call(port, lambda _: reader.txRxPacket()) == dxl.COMM_SUCCESS
        return [reader.getData(i, ADDR["Present_Position"], 4) for i in range(1, 7)] == expected

    assert wait_until(arrived)

    bulk = dxl.GroupBulkRead(port, ph)
    bulk.addParam(1, ADDR["Present_Position"], 4)
    bulk.addParam(3, ADDR["Present_Temperature"], 1)
    bulk.addParam(6, ADDR["Model_Number"], 2)
    assert sdk_call(port, lambda _: bulk.txRxPacket()) == dxl.COMM_SUCCESS
    assert bulk.getData(1, ADDR["Present_Position"], 4) == 1200
    assert bulk.getData(3, ADDR["Present_Temperature"], 1) == 30
    assert bulk.getData(6, ADDR["Model_Number"], 2) == 1200


def test_bulk_write_reaches_each_servo_at_its_own_address(koch):
    arm, port, ph = koch
    bulk = dxl.GroupBulkWrite(port, ph)
    bulk.addParam(2, ADDR["LED"], 1, [1])
    bulk.addParam(4, ADDR["Profile_Velocity"], 4, list((50).to_bytes(4, "little")))
    assert bulk.txPacket() == dxl.COMM_SUCCESS
    assert wait_until(
        lambda: arm.bus.servo(2).get("LED") == 1 and arm.bus.servo(4).get("Profile_Velocity") == 50
    )


def test_reboot_clears_ram_and_keeps_eeprom(koch):
    arm, port, ph = koch
    write(port, ph, 6, "Homing_Offset", -50)
    write(port, ph, 6, "Torque_Enable", 1)
    assert sdk_call(port, ph.reboot, 6)[0] == dxl.COMM_SUCCESS
    assert read(port, ph, 6, "Torque_Enable") == 0
    assert read(port, ph, 6, "Homing_Offset") == -50


def test_factory_reset_keeps_what_its_option_says(koch):
    arm, port, ph = koch
    write(port, ph, 3, "Max_Position_Limit", 3000)
    assert sdk_call(port, ph.factoryReset, 3, 0x02)[0] == dxl.COMM_SUCCESS  # all but ID and baud
    assert read(port, ph, 3, "Max_Position_Limit") == 4095
    assert sdk_call(port, ph.factoryReset, 3, 0x01)[0] == dxl.COMM_SUCCESS  # all but ID
    assert arm.bus.servo(3).get("Baud_Rate") == XL330.factory["Baud_Rate"]  # 57600: deaf at 1 Mbps
    assert ph.ping(port, 3)[1] == dxl.COMM_RX_TIMEOUT


def test_overheat_latches_the_alert_and_shuts_down_until_reboot(koch):
    arm, port, ph = koch
    write(port, ph, 5, "Torque_Enable", 1)
    arm.bus.servo(5).temperature_c = 80  # above Temperature_Limit (70)
    value, comm, error = sdk_call(port, ph.read1ByteTxRx, 5, ADDR["Hardware_Error_Status"])
    assert comm == dxl.COMM_SUCCESS
    assert error & ALERT and value & 0b100  # bit 2: overheating
    assert read(port, ph, 5, "Torque_Enable") == 0  # Shutdown includes overheating
    arm.bus.servo(5).temperature_c = 35
    assert sdk_call(port, ph.read1ByteTxRx, 5, ADDR["Hardware_Error_Status"])[2] & ALERT  # latched
    sdk_call(port, ph.reboot, 5)
    value, comm, error = sdk_call(port, ph.read1ByteTxRx, 5, ADDR["Hardware_Error_Status"])
    assert (value, error) == (0, 0)


def test_status_return_level_one_answers_reads_only(koch):
    arm, port, ph = koch
    write(port, ph, 2, "Status_Return_Level", 1)
    comm, _ = ph.write1ByteTxRx(port, 2, ADDR["LED"], 1)
    assert comm == dxl.COMM_RX_TIMEOUT
    assert wait_until(lambda: arm.bus.servo(2).get("LED") == 1)
    assert read(port, ph, 2, "LED") == 1


def test_fresh_dynamixel_answers_at_its_factory_57600_baud():
    with serve_robot("koch_leader", fresh=True) as arm:
        port = open_port(dxl.PortHandler, arm.port, 1_000_000)
        ph = dxl.PacketHandler(2.0)
        assert ph.ping(port, 1)[1] == dxl.COMM_RX_TIMEOUT
        assert port.setBaudRate(57600)
        assert sdk_call(port, ph.ping, 1)[:2] == (1190, dxl.COMM_SUCCESS)
        port.closePort()


def test_current_based_position_mode_is_multi_turn(koch):
    arm, port, ph = koch
    write(port, ph, 6, "Operating_Mode", 5)  # the Koch gripper's mode
    assert write(port, ph, 6, "Goal_Position", 5000) == 0
    assert write(port, ph, 6, "Goal_Position", 2_000_000) == DATA_LIMIT_ERROR
