"""Motor setup on factory-fresh virtual servos, ports by path and URL, port errors, and the
USB-serial latency timer check on a fake sysfs tree."""

from __future__ import annotations

import os

import pytest

from edgevla.drivers.bus import MotorBus
from edgevla.drivers.errors import MotorNotFoundError, PortError
from edgevla.drivers.feetech import FeetechPort
from edgevla.drivers.latency import check_latency
from edgevla.drivers.port import open_port
from edgevla.drivers.setup import assign_id_and_baud
from edgevla.errors import EdgevlaError
from edgevla.firmware import serve_robot
from edgevla.hardware import load_robot

from .helpers import PATIENT


@pytest.mark.parametrize("robot_name", ["so101_follower", "koch_follower"])
def test_setup_gives_each_new_servo_its_id_and_baud(robot_name):
    robot = load_robot(robot_name)
    servo = robot.motors[0].servo
    bauds = [servo.default_baudrate, robot.baudrate]
    # factory servos: id 1 at the factory rate (Dynamixel 57600, Feetech 1 Mbps); one plugged at a time
    with (
        serve_robot(robot, fresh=True, motors=2) as arm,
        MotorBus.for_robot(robot, arm.port, config=PATIENT) as bus,
    ):
        for joint in robot.joint_names[:2]:
            arm.bus.plug_only(joint)
            old_id, old_baud = assign_id_and_baud(bus, robot.motor(joint), robot, bauds)
            assert (old_id, old_baud) == (1, servo.default_baudrate)
        arm.bus.plug_all()
        bus.set_baudrate(robot.baudrate)
        expected = {m.id: m.servo.model_number for m in robot.motors[:2]}
        assert bus.scan(range(10), [robot.baudrate]) == {robot.baudrate: expected}
        # persisted: the ids and rates survive a power cycle (Feetech needed Lock = 0 for that)
        for s in arm.bus.servos:
            s.power_on(arm.bus.now)
        assert sorted(s.id for s in arm.bus.servos) == [1, 2]
        assert {s.baudrate for s in arm.bus.servos} == {robot.baudrate}


def test_setup_refuses_two_servos_at_once():
    robot = load_robot("so101_follower")
    with (
        serve_robot(robot, motors=2) as arm,
        MotorBus.for_robot(robot, arm.port, config=PATIENT) as bus,
        pytest.raises(MotorNotFoundError, match="exactly one servo"),
    ):
        assign_id_and_baud(bus, robot.motors[0], robot, [robot.baudrate])


def test_socket_url_port():
    robot = load_robot("so101_follower")
    with serve_robot(robot, tcp=("127.0.0.1", 0)) as arm:
        assert arm.url.startswith("socket://")
        with MotorBus.for_robot(robot, arm.url, config=PATIENT) as bus:
            assert bus.sync_read("Present_Position") == dict.fromkeys(robot.joint_names, 2048)


def test_missing_port_and_refused_baud_are_clear_errors(tmp_path):
    robot = load_robot("so101_follower")
    with pytest.raises(PortError, match="'/dev/ttyNOPE9' does not exist"):
        MotorBus.for_robot(robot, "/dev/ttyNOPE9").open()
    with pytest.raises(EdgevlaError, match="sts3215 does not support 12345 baud"):
        MotorBus.for_robot(robot, "/dev/null", baudrate=12345).open()
    with serve_robot(robot) as arm, pytest.raises(PortError, match="at -5 baud"):
        open_port(FeetechPort, arm.port, -5, 20)


def fake_sysfs(tmp_path, latency: str):
    dev = tmp_path / "dev"
    (dev / "serial" / "by-id").mkdir(parents=True)
    (dev / "ttyUSB0").touch()
    link = dev / "serial" / "by-id" / "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
    os.symlink(dev / "ttyUSB0", link)
    timer = tmp_path / "sys" / "bus" / "usb-serial" / "devices" / "ttyUSB0"
    timer.mkdir(parents=True)
    (timer / "latency_timer").write_text(latency + "\n")
    return link, tmp_path / "sys"


def test_latency_timer_check_resolves_symlinks_and_advises(tmp_path):
    link, sysfs = fake_sysfs(tmp_path, "16")
    report = check_latency(str(link), sysfs)
    assert report.device == "ttyUSB0" and report.latency_ms == 16 and report.too_high
    advice = report.advice()
    assert "16 ms" in advice and "echo 1" in advice and "ttyUSB0/latency_timer" in advice and "udev" in advice


def test_latency_timer_at_1ms_and_non_usb_ports_pass(tmp_path):
    link, sysfs = fake_sysfs(tmp_path, "1")
    assert not check_latency(str(link), sysfs).too_high
    assert check_latency("/dev/pts/3", sysfs) is None
    assert check_latency("socket://127.0.0.1:5555", sysfs) is None


def test_configure_persists_across_power_cycle():
    """Feetech keeps EEPROM writes only with Lock = 0: configure() unlocks, writes, locks."""
    from edgevla.drivers.setup import configure

    robot = load_robot("so101_follower")
    with serve_robot(robot) as arm, MotorBus.for_robot(robot, arm.port, config=PATIENT) as bus:
        configure(bus, robot)
        for s in arm.bus.servos:
            s.power_on(arm.bus.now)
        gripper = arm.bus.servo("gripper")
        assert gripper.get("Return_Delay_Time") == 0 and gripper.get("P_Coefficient") == 16
        assert gripper.get("Max_Torque_Limit") == 500 and gripper.get("Lock") == 1


def test_model_without_sync_read_is_read_per_motor(tmp_path):
    """SCS0009: protocol 1 (big endian), no SYNC READ: the bus reads motor by motor."""
    path = tmp_path / "micro.yaml"
    path.write_text(
        "name: micro\nrole: follower\nbaudrate: 1000000\n"
        "motors:\n  a: {id: 1, servo: scs0009, norm: range_m100_100}\n"
        "  b: {id: 2, servo: scs0009, norm: range_m100_100}\n"
    )
    robot = load_robot(path)
    with serve_robot(robot) as arm, MotorBus.for_robot(robot, arm.port, config=PATIENT) as bus:
        arm.bus.servo("b").actual = 700.0  # big endian on the wire: 0x02BC
        assert bus.sync_read("Present_Position") == {"a": 512, "b": 700}
        assert bus.stats.transactions == 2
        bus.write("Goal_Position", "a", 300)
        assert arm.bus.servo("a").goal_position == 300


def test_status_timeout_comes_from_the_environment_and_bad_values_are_named(monkeypatch):
    from edgevla.drivers.bus import TIMEOUT_ENV, BusConfig

    robot = load_robot("so101_follower")
    monkeypatch.setenv(TIMEOUT_ENV, "75")
    assert BusConfig().timeout_ms == 75
    with serve_robot(robot) as arm, MotorBus.for_robot(robot, arm.port) as bus:
        assert bus.port.timeout_ms == 75
        # a scan pings absent ids with its own short timeout, and gives the bus's back after
        assert bus.scan(range(0, 8), [robot.baudrate]) == {robot.baudrate: {i: 777 for i in range(1, 7)}}
        assert bus.port.timeout_ms == 75
    for bad in ("fast", "0", "-3"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(EdgevlaError, match=f"{TIMEOUT_ENV}='{bad}' is not a timeout"):
            BusConfig()
