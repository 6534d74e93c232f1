"""The unmodified Feetech SDK (scservo_sdk) against the virtual STS3215 firmware over a real pty."""

from __future__ import annotations

import time

import scservo_sdk as scs

from edgevla.firmware import Sweep, serve_robot
from edgevla.hardware import load_servo
from tests.waiting import wait_until

from .helpers import open_port, sdk_call

STS = load_servo("sts3215")
ADDR = {name: reg.address for name, reg in STS.registers.items()}


def read2(port, ph, servo_id, name):
    value, comm, error = sdk_call(port, ph.read2ByteTxRx, servo_id, ADDR[name])
    assert comm == scs.COMM_SUCCESS, ph.getTxRxResult(comm)
    return value


def write(port, ph, servo_id, name, value, size=1):
    call = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx}[size]
    comm, error = sdk_call(port, call, servo_id, ADDR[name], value)
    assert comm == scs.COMM_SUCCESS, ph.getTxRxResult(comm)
    return error


def test_ping_returns_model_777_for_every_joint_and_nothing_for_absent_ids(so101):
    arm, port, ph = so101
    for servo_id in range(1, 7):
        model, comm, error = sdk_call(port, ph.ping, servo_id)
        assert (model, comm, error) == (777, scs.COMM_SUCCESS, 0)
    _, comm, _ = ph.ping(port, 7)
    assert comm == scs.COMM_RX_TIMEOUT


def test_goal_position_moves_present_position_at_the_speed_limit(so101):
    arm, port, ph = so101
    assert read2(port, ph, 2, "Present_Position") == 2048  # joints start mid-range
    write(port, ph, 2, "Torque_Enable", 1)
    write(port, ph, 2, "Goal_Position", 3000, size=2)
    first = read2(port, ph, 2, "Present_Position")
    assert first < 3000  # 952 counts at 3400 counts/s take ~0.28 s: not there at once
    assert wait_until(lambda: read2(port, ph, 2, "Present_Position") == 3000)
    assert arm.bus.servo(2).present_position == 3000
    assert read2(port, ph, 2, "Moving") & 0xFF == 0


def test_torque_off_ignores_goal_and_torque_on_moves_to_the_stored_goal(so101):
    arm, port, ph = so101
    write(port, ph, 1, "Goal_Position", 1000, size=2)
    assert not wait_until(lambda: read2(port, ph, 1, "Present_Position") != 2048, timeout_s=0.3)
    write(port, ph, 1, "Torque_Enable", 1)  # the stale goal makes the arm jump: what drivers must avoid
    assert wait_until(lambda: read2(port, ph, 1, "Present_Position") == 1000)


def test_eeprom_write_with_lock_on_is_applied_but_lost_at_reboot(so101):
    arm, port, ph = so101
    assert read2(port, ph, 3, "Lock") & 0xFF == 1  # factory: locked
    write(port, ph, 3, "Max_Position_Limit", 3000, size=2)
    assert read2(port, ph, 3, "Max_Position_Limit") == 3000  # takes effect now...
    arm.bus.servo(3).power_on(arm.bus.now)  # ...but was not saved: a power cycle restores it
    assert read2(port, ph, 3, "Max_Position_Limit") == 4095

    write(port, ph, 3, "Lock", 0)
    write(port, ph, 3, "Max_Position_Limit", 3000, size=2)
    write(port, ph, 3, "Lock", 1)
    arm.bus.servo(3).power_on(arm.bus.now)
    assert read2(port, ph, 3, "Max_Position_Limit") == 3000
    assert read2(port, ph, 3, "Lock") & 0xFF == 1  # Lock itself is RAM: locked again after boot


def test_reboot_instruction_reloads_eeprom_from_flash(so101):
    arm, port, ph = so101
    write(port, ph, 4, "Min_Position_Limit", 500, size=2)  # Lock = 1: not persisted
    reboot = [0, 0, 4, 2, 0x0A, 0]  # FTServo's RESET (0x0A); the Python SDK has no helper for it
    _, comm, _ = sdk_call(port, ph.txRxPacket, reboot)
    assert comm == scs.COMM_SUCCESS
    assert read2(port, ph, 4, "Min_Position_Limit") == 0


def test_read_only_registers_ignore_writes(so101):
    arm, port, ph = so101
    error = write(port, ph, 1, "Present_Position", 100, size=2)
    assert error == 0  # Feetech does not flag it...
    assert read2(port, ph, 1, "Present_Position") == 2048  # ...the value is simply kept
    write(port, ph, 1, "Model_Number", 1, size=2)
    assert read2(port, ph, 1, "Model_Number") == 777


def test_homing_offset_is_subtracted_sign_magnitude(so101):
    arm, port, ph = so101
    write(port, ph, 5, "Lock", 0)
    write(port, ph, 5, "Homing_Offset", 100, size=2)
    assert read2(port, ph, 5, "Present_Position") == 2048 - 100  # Present = Actual - Homing_Offset
    write(port, ph, 5, "Homing_Offset", STS.register("Homing_Offset").encode(-100), size=2)
    assert read2(port, ph, 5, "Homing_Offset") == 100 | 1 << 11  # sign bit 11
    assert read2(port, ph, 5, "Present_Position") == 2048 + 100


def test_set_middle_makes_the_current_position_2048(so101):
    arm, port, ph = so101
    write(port, ph, 6, "Torque_Enable", 1)
    write(port, ph, 6, "Goal_Position", 2500, size=2)
    assert wait_until(lambda: read2(port, ph, 6, "Present_Position") == 2500)
    write(port, ph, 6, "Torque_Enable", 0)
    write(port, ph, 6, "Torque_Enable", 128)  # STS: calibrate the middle position
    assert read2(port, ph, 6, "Present_Position") == 2048
    assert read2(port, ph, 6, "Homing_Offset") == 452


def test_position_limits_clamp_the_goal(so101):
    arm, port, ph = so101
    write(port, ph, 1, "Max_Position_Limit", 2300, size=2)
    write(port, ph, 1, "Torque_Enable", 1)
    write(port, ph, 1, "Goal_Position", 3500, size=2)
    assert wait_until(lambda: not arm.bus.servo(1).get("Moving"))
    assert read2(port, ph, 1, "Present_Position") == 2300
    assert read2(port, ph, 1, "Goal_Position") == 3500  # the register keeps what was written


def test_sync_write_then_sync_read_all_joints(so101):
    arm, port, ph = so101
    torque = scs.GroupSyncWrite(port, ph, ADDR["Torque_Enable"], 1)
    goals = scs.GroupSyncWrite(port, ph, ADDR["Goal_Position"], 2)
    for servo_id in range(1, 7):
        torque.addParam(servo_id, [1])
        goal = 1500 + 100 * servo_id
        goals.addParam(servo_id, [goal & 0xFF, goal >> 8])
    assert torque.txPacket() == scs.COMM_SUCCESS
    assert goals.txPacket() == scs.COMM_SUCCESS  # no status packet for sync write
    expected = [1500 + 100 * i for i in range(1, 7)]
    assert wait_until(lambda: [arm.bus.servo(i).goal_position for i in range(1, 7)] == expected)

    reader = scs.GroupSyncRead(port, ph, ADDR["Present_Position"], 2)
    for servo_id in range(1, 7):
        reader.addParam(servo_id)

    def all_arrived():
        assert sdk_call(port, lambda _: reader.txRxPacket()) == scs.COMM_SUCCESS
        return [reader.getData(i, ADDR["Present_Position"], 2) for i in range(1, 7)] == [
            1500 + 100 * i for i in range(1, 7)
        ]

    assert wait_until(all_arrived)


def test_broadcast_write_reaches_all_servos_and_gets_no_reply(so101):
    arm, port, ph = so101
    comm, _ = ph.write1ByteTxRx(port, scs.BROADCAST_ID, ADDR["Return_Delay_Time"], 0)
    assert comm == scs.COMM_SUCCESS  # the SDK does not wait for broadcast replies
    assert wait_until(lambda: [arm.bus.servo(i).get("Return_Delay_Time") for i in range(1, 7)] == [0] * 6)
    assert port.ser.in_waiting == 0


def test_reg_write_waits_for_action(so101):
    arm, port, ph = so101
    comm, _ = sdk_call(port, ph.regWriteTxRx, 2, ADDR["Torque_Enable"], 1, [1])
    assert comm == scs.COMM_SUCCESS
    assert not arm.bus.servo(2).torque
    assert ph.action(port, scs.BROADCAST_ID) == scs.COMM_SUCCESS
    assert wait_until(lambda: arm.bus.servo(2).torque)


def test_id_change_takes_effect_at_once(so101):
    arm, port, ph = so101
    write(port, ph, 6, "Lock", 0)
    write(port, ph, 6, "ID", 20)  # the status packet still comes from id 6
    model, comm, _ = sdk_call(port, ph.ping, 20)
    assert (model, comm) == (777, scs.COMM_SUCCESS)
    assert ph.ping(port, 6)[1] == scs.COMM_RX_TIMEOUT


def test_baud_change_makes_the_servo_deaf_at_the_old_rate(so101):
    arm, port, ph = so101
    write(port, ph, 1, "Baud_Rate", STS.baud_code(115200))
    assert ph.ping(port, 1)[1] == scs.COMM_RX_TIMEOUT
    assert sdk_call(port, ph.ping, 2)[1] == scs.COMM_SUCCESS  # the others still listen at 1 Mbps
    assert port.setBaudRate(115200)
    assert sdk_call(port, ph.ping, 1)[:2] == (777, scs.COMM_SUCCESS)
    assert ph.ping(port, 2)[1] == scs.COMM_RX_TIMEOUT


def test_host_at_the_wrong_baud_rate_gets_no_answer():
    with serve_robot("so101_follower") as arm:
        port = open_port(scs.PortHandler, arm.port, 57600)
        ph = scs.PacketHandler(0)
        assert ph.ping(port, 1)[1] == scs.COMM_RX_TIMEOUT
        assert arm.bus.stats.ignored_baud >= 1
        port.closePort()


def test_status_level_zero_answers_only_ping_and_read(so101):
    arm, port, ph = so101
    write(port, ph, 3, "Response_Status_Level", 0)
    comm, _ = ph.write1ByteTxRx(port, 3, ADDR["Torque_Enable"], 1)
    assert comm == scs.COMM_RX_TIMEOUT
    assert wait_until(lambda: arm.bus.servo(3).torque)  # executed all the same
    assert read2(port, ph, 3, "Present_Position") == 2048
    assert sdk_call(port, ph.ping, 3)[1] == scs.COMM_SUCCESS


def test_overheat_sets_the_error_bit_and_unloads_the_motor(so101):
    arm, port, ph = so101
    write(port, ph, 4, "Torque_Enable", 1)
    arm.bus.servo(4).temperature_c = 75  # above Max_Temperature_Limit (70)
    value, comm, error = sdk_call(port, ph.read1ByteTxRx, 4, ADDR["Present_Temperature"])
    assert (value, comm) == (75, scs.COMM_SUCCESS)
    assert error & scs.ERRBIT_OVERHEAT
    assert not arm.bus.servo(4).torque  # Unloading_Condition includes overheat
    arm.bus.servo(4).temperature_c = 40
    assert sdk_call(port, ph.read1ByteTxRx, 4, ADDR["Present_Temperature"])[2] == 0


def test_a_hand_sweeps_a_leader_arm_seen_through_sync_read():
    with serve_robot("so101_leader", motion=Sweep(low=1000, high=3000, period_s=0.4)) as arm:
        port = open_port(scs.PortHandler, arm.port, 1_000_000)
        ph = scs.PacketHandler(0)
        reader = scs.GroupSyncRead(port, ph, ADDR["Present_Position"], 2)
        for servo_id in range(1, 7):
            reader.addParam(servo_id)
        seen = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not ({"low", "high"} <= seen):
            if sdk_call(port, lambda _: reader.txRxPacket()) == scs.COMM_SUCCESS:
                pan = reader.getData(1, ADDR["Present_Position"], 2)
                assert 990 <= pan <= 3010
                seen |= {"low"} if pan < 1300 else {"high"} if pan > 2700 else set()
        port.closePort()
    assert seen == {"low", "high"}
