from pathlib import Path

import pytest

from edgevla.errors import EdgevlaError
from edgevla.hardware import (
    HardwareFileError,
    NormMode,
    list_robots,
    list_servos,
    load_robot,
    load_robot_pair,
    load_servo,
)


def test_every_shipped_definition_loads():
    assert {"sts3215", "sts3250", "scs0009", "xl330-m077", "xl330-m288", "xl430-w250", "xm430-w350"} <= set(
        list_servos()
    )
    for name in list_robots():
        robot = load_robot(name)
        assert len(robot.motors) == 6
        assert robot.joint_names[-1] == "gripper"


def test_reference_facts():
    sts = load_servo("sts3215")
    assert (sts.model_number, sts.protocol, sts.resolution) == (777, 0, 4096)
    assert (sts.register("Present_Position").address, sts.register("Present_Position").size) == (56, 2)
    assert sts.register("Homing_Offset").eeprom and not sts.register("Torque_Enable").eeprom
    assert sts.baud_code(1_000_000) == 0 and sts.baud_code(115200) == 4
    xl = load_servo("xl330-m288")
    assert (xl.model_number, xl.register("Goal_Position").address, xl.register("Goal_Position").size) == (
        1200,
        116,
        4,
    )
    assert xl.baud_rates[3] == 1_000_000
    assert load_servo("xl330-m077").model_number == 1190
    assert load_servo("xl430-w250").model_number == 1060


def test_sign_magnitude_and_twos_complement_round_trip():
    offset = load_servo("sts3215").register("Homing_Offset")  # sign bit 11
    assert offset.encode(-5) == (1 << 11) | 5
    assert offset.decode(offset.encode(-2047)) == -2047
    with pytest.raises(ValueError, match="exceeds 2047"):
        offset.encode(2114)
    load = load_servo("sts3215").register("Present_Load")  # sign bit 10
    assert load.decode((1 << 10) | 100) == -100
    position = load_servo("xl330-m288").register("Present_Position")
    assert position.encode(-1) == 0xFFFFFFFF and position.decode(0xFFFFFFFE) == -2


def test_robot_definitions():
    follower = load_robot("so101_follower")
    assert [m.id for m in follower.motors] == [1, 2, 3, 4, 5, 6]
    assert follower.motor("gripper").norm is NormMode.RANGE_0_100
    assert follower.motor_settings(follower.motor("gripper"))["Max_Torque_Limit"] == 500
    assert follower.motor_settings(follower.motor("elbow_flex"))["P_Coefficient"] == 16
    assert load_robot("so100_follower").name == "so101_follower"
    leader, follower = load_robot_pair("koch")
    assert leader.role == "leader" and follower.role == "follower" and follower.vendor == "dynamixel"


def test_unknown_robot_names_the_known_ones():
    with pytest.raises(EdgevlaError, match="unknown robot 'so999'.*so101_follower"):
        load_robot("so999")


@pytest.mark.parametrize(
    "text, field",
    [
        ("name: x\nrole: driver\nbaudrate: 1000000\nmotors: {}\n", "role"),
        (
            "name: x\nrole: leader\nbaudrate: 1000000\nmotors:\n  a: {id: 1, servo: sts3215, norm: furlongs}\n",
            "motors.a.norm",
        ),
        (
            "name: x\nrole: leader\nbaudrate: 1000000\nmotors:\n  a: {servo: sts3215, norm: degrees}\n",
            "motors.a.id",
        ),
        (
            "name: x\nrole: leader\nbaudrate: 3\nmotors:\n  a: {id: 1, servo: sts3215, norm: degrees}\n",
            "baudrate",
        ),
    ],
)
def test_malformed_robot_file_names_file_and_field(tmp_path: Path, text: str, field: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(HardwareFileError) as err:
        load_robot(path)
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmotors: [\n")
    with pytest.raises(HardwareFileError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_robot(path)


def _hardware_copy(tmp_path: Path) -> Path:
    import shutil

    from edgevla.paths import hardware_dir

    root = tmp_path / "hardware"
    shutil.copytree(hardware_dir(), root)
    return root


def test_vendor_rules_are_one_table_read_by_drivers_firmware_and_tui(tmp_path: Path):
    from edgevla.drivers.bus import backend_for
    from edgevla.firmware import VirtualServo

    root = _hardware_copy(tmp_path)
    table = root / "vendors.yaml"
    table.write_text(table.read_text().replace("errors: Status", "errors: Present_Load"))
    servo = load_servo("sts3215", root)
    assert servo.rules.errors == "Present_Load"  # what the TUI's motors screen reads for errors
    assert backend_for(servo).rules is servo.rules
    assert VirtualServo(servo, now=0.0).rules is servo.rules
    sts, xl = load_servo("sts3215"), load_servo("xl330-m288")
    assert (sts.rules.homing_sign, sts.rules.eeprom_guard, sts.rules.byteorder(sts.protocol)) == (
        -1,
        "lock",
        "little",
    )
    assert (xl.rules.homing_sign, xl.rules.eeprom_guard, xl.rules.voltage) == (
        1,
        "torque",
        "Present_Input_Voltage",
    )
    assert load_servo("scs0009").rules.byteorder(1) == "big"
    assert sts.rules.alarm_names(4 | 32) == "overheat, overload"


def test_malformed_vendor_table_names_file_and_field(tmp_path: Path):
    root = _hardware_copy(tmp_path)
    table = root / "vendors.yaml"
    table.write_text(table.read_text().replace("eeprom_guard: lock", "eeprom_guard: glue"))
    with pytest.raises(HardwareFileError) as err:
        load_servo("sts3215", root)
    assert str(table) in str(err.value) and "'feetech.eeprom_guard'" in str(err.value)
