"""Byte-level protocol tests: hand-built instruction bytes in, exact status bytes out (no pty)."""

from __future__ import annotations

import time

import dynamixel_sdk as dxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgevla.firmware import Condition, build_bus, dynamixel, feetech, serve_robot


def bus_for(robot: str, **kwargs):
    return build_bus(robot, clock=lambda: 0.0, **kwargs)


def replies(bus, packet: bytes) -> list[bytes]:
    return [tx.packet for tx in bus.receive(packet)]


# --- Feetech ---------------------------------------------------------------------------------


def test_feetech_checksum_matches_the_documented_ping():
    # Feetech's manual: ping id 1 is FF FF 01 02 01 FB; the servo answers FF FF 01 02 00 FC.
    assert feetech.instruction_packet(1, feetech.PING) == bytes.fromhex("ffff010201fb")
    bus = bus_for("so101_follower")
    assert replies(bus, bytes.fromhex("ffff010201fb")) == [bytes.fromhex("ffff010200fc")]


def test_feetech_read_present_position_exact_bytes():
    bus = bus_for("so101_follower")
    # READ id 3, address 56, 2 bytes: checksum ~(3+4+2+56+2) = BC
    out = replies(bus, bytes.fromhex("ffff0304023802bc"))
    # 2048 = 00 08 little endian, checksum ~(3+4+0+0+8) = F0
    assert out == [bytes.fromhex("ffff0304000008f0")]


def test_feetech_bad_checksum_is_ignored_and_the_parser_resyncs():
    bus = bus_for("so101_follower")
    good = feetech.instruction_packet(2, feetech.PING)
    bad = bytearray(feetech.instruction_packet(1, feetech.PING))
    bad[-1] ^= 0x55
    assert replies(bus, b"\x00\x13" + bytes(bad) + good) == [feetech.status_packet(2, 0)]


def test_feetech_packet_split_across_reads_is_reassembled():
    bus = bus_for("so101_follower")
    packet = feetech.instruction_packet(4, feetech.READ, bytes([56, 2]))
    assert replies(bus, packet[:3]) == []
    assert replies(bus, packet[3:]) == [feetech.status_packet(4, 0, b"\x00\x08")]


def test_feetech_sync_read_answers_in_the_requested_order_and_skips_absent_ids():
    bus = bus_for("so101_follower")
    request = feetech.instruction_packet(feetech.BROADCAST_ID, feetech.SYNC_READ, bytes([56, 2, 5, 9, 1]))
    assert replies(bus, request) == [
        feetech.status_packet(5, 0, b"\x00\x08"),
        feetech.status_packet(1, 0, b"\x00\x08"),
    ]


def test_feetech_return_delay_is_reported_per_status_packet():
    bus = bus_for("so101_follower")
    (tx,) = bus.receive(feetech.instruction_packet(1, feetech.PING))
    assert tx.delay_s == 250 * 2e-6  # factory Return_Delay_Time 250 x 2 us
    bus.servo(1).set("Return_Delay_Time", 0)
    assert bus.receive(feetech.instruction_packet(1, feetech.PING))[0].delay_s == 0


def test_a_pause_mid_packet_is_noise_but_a_busy_firmware_is_not_a_pause():
    import serial

    with serve_robot("so101_follower") as arm:
        arm.bus.servo(1).set("Return_Delay_Time", 0)
        host = serial.Serial(arm.port, 1_000_000, timeout=0.3)
        ping = feetech.instruction_packet(1, feetech.PING)
        host.write(ping[:3])
        time.sleep(0.2)  # the host went quiet mid-packet: a real servo resets its receiver
        host.write(ping[3:])
        assert host.read(6) == b""
        with arm.bus.inspect():  # the firmware is busy for 200 ms; the host's bytes queue meanwhile
            host.write(ping[:3])
            time.sleep(0.05)
            host.write(ping[3:])
            time.sleep(0.15)
        assert host.read(6) == feetech.status_packet(1, 0)
        host.close()


def test_two_servos_with_one_id_collide_into_garbage():
    bus = bus_for("so101_follower", fresh=True)
    bus.plug_all()  # six factory servos, all id 1, on one wire
    (tx,) = bus.receive(feetech.instruction_packet(1, feetech.READ, bytes([56, 2])))
    assert tx.packet == feetech.status_packet(1, 0, b"\x00\x08")  # identical answers merge cleanly
    bus.servo("gripper").actual = 1000
    (tx,) = bus.receive(feetech.instruction_packet(1, feetech.READ, bytes([56, 2])))
    assert feetech.checksum(tx.packet[2:-1]) != tx.packet[-1]


# --- Dynamixel -------------------------------------------------------------------------------


def test_dynamixel_crc_matches_the_emanual_examples():
    # ROBOTIS e-manual, protocol 2.0: ping id 1 and an XM430-W350 (1030) answering, firmware 0x26.
    assert dynamixel.instruction_packet(1, dynamixel.PING) == bytes.fromhex("fffffd0001030001194e")
    assert dynamixel.status_packet(1, 0, bytes([0x06, 0x04, 0x26])) == bytes.fromhex(
        "fffffd000107005500060426655d"
    )


@given(st.binary(max_size=300))
def test_dynamixel_crc_equals_the_sdk_implementation(data):
    assert dynamixel.crc16(data) == dxl.Protocol2PacketHandler().updateCRC(0, list(data), len(data))


@given(st.binary(max_size=60))
def test_stuffing_round_trips_and_matches_the_sdk(params):
    body = bytes([dynamixel.WRITE]) + params
    assert dynamixel.unstuff(dynamixel.stuff(body)) == body
    ours = dynamixel.instruction_packet(1, dynamixel.WRITE, params)
    length = len(body) + 2
    raw = [0xFF, 0xFF, 0xFD, 0x00, 1, length & 0xFF, length >> 8, *body, 0, 0]
    sdk = dxl.Protocol2PacketHandler().addStuffing(raw)
    assert list(ours[:-2]) == sdk[:-2]


def test_dynamixel_stuffed_write_reaches_the_table():
    bus = bus_for("koch_follower")
    # Profile_Acceleration (108, 4 bytes) := FF FF FD 00: the packet must carry FF FF FD FD
    params = (108).to_bytes(2, "little") + bytes([0xFF, 0xFF, 0xFD, 0x00])
    packet = dynamixel.instruction_packet(3, dynamixel.WRITE, params)
    assert b"\xff\xff\xfd\xfd" in packet
    assert replies(bus, packet) == [dynamixel.status_packet(3, 0)]
    assert bus.servo(3).mem[108:112] == bytes([0xFF, 0xFF, 0xFD, 0x00])


def test_dynamixel_read_exact_bytes_and_range_error():
    bus = bus_for("koch_follower")
    read = dynamixel.instruction_packet(6, dynamixel.READ, bytes([132, 0, 4, 0]))
    assert replies(bus, read) == [dynamixel.status_packet(6, 0, (2048).to_bytes(4, "little"))]
    beyond = dynamixel.instruction_packet(6, dynamixel.READ, bytes([0xF0, 0x03, 4, 0]))
    assert replies(bus, beyond) == [dynamixel.status_packet(6, dynamixel.DATA_RANGE_ERROR)]


def test_dynamixel_crc_error_is_answered_with_error_3():
    bus = bus_for("koch_follower")
    packet = bytearray(dynamixel.instruction_packet(2, dynamixel.PING))
    packet[-1] ^= 0xFF
    assert replies(bus, bytes(packet)) == [dynamixel.status_packet(2, dynamixel.CRC_ERROR)]


def test_dynamixel_unknown_instruction_is_an_instruction_error():
    bus = bus_for("koch_follower")
    assert replies(bus, dynamixel.instruction_packet(1, 0x77)) == [
        dynamixel.status_packet(1, dynamixel.INSTRUCTION_ERROR)
    ]


def test_dynamixel_sync_write_gets_no_reply_and_sync_read_answers_in_order():
    bus = bus_for("koch_follower")
    entries = b"".join(bytes([i]) + (1000 + i).to_bytes(4, "little") for i in (2, 4))
    sync_write = dynamixel.instruction_packet(
        dynamixel.BROADCAST_ID, dynamixel.SYNC_WRITE, bytes([116, 0, 4, 0]) + entries
    )
    assert replies(bus, sync_write) == []
    assert (bus.servo(2).goal_position, bus.servo(4).goal_position) == (1002, 1004)
    sync_read = dynamixel.instruction_packet(
        dynamixel.BROADCAST_ID, dynamixel.SYNC_READ, bytes([116, 0, 4, 0, 4, 2])
    )
    assert replies(bus, sync_read) == [
        dynamixel.status_packet(4, 0, (1004).to_bytes(4, "little")),
        dynamixel.status_packet(2, 0, (1002).to_bytes(4, "little")),
    ]


def test_wire_time_adds_the_bytes_transmission_time_at_the_bus_rate():
    bus = bus_for("so101_follower", wire_time=True)
    bus.servo(1).set("Return_Delay_Time", 0)
    (tx,) = bus.receive(feetech.instruction_packet(1, feetech.PING))
    assert tx.delay_s == pytest.approx((6 + 6) * 10 / 1_000_000)  # 6-byte ping + 6-byte status, 8N1
    sync = feetech.instruction_packet(feetech.BROADCAST_ID, feetech.SYNC_READ, bytes([56, 2, 1, 2]))
    first, second = bus.receive(sync)
    assert second.delay_s == pytest.approx(0.0005 + 8 * 10 / 1_000_000)  # id 2: factory delay + 8 bytes


def test_injected_alarm_shows_in_every_feetech_status():
    bus = bus_for("so101_follower")
    bus.servo(2).injected = Condition.ANGLE_SENSOR
    (tx,) = bus.receive(feetech.instruction_packet(2, feetech.PING))
    assert tx.packet == feetech.status_packet(2, 0x02)


def test_tcp_serves_the_same_bus_for_socket_urls():
    import serial

    with serve_robot("so101_follower", tcp=("127.0.0.1", 0)) as arm:
        link = serial.serial_for_url(arm.url, timeout=2)
        link.write(feetech.instruction_packet(2, feetech.WRITE, bytes([40, 1])))
        assert link.read(6) == feetech.status_packet(2, 0)
        assert arm.bus.servo(2).torque
        link.write(feetech.instruction_packet(2, feetech.READ, bytes([3, 2])))
        assert link.read(8) == feetech.status_packet(2, 0, (777).to_bytes(2, "little"))
        link.close()


def test_a_host_that_stops_reading_does_not_stall_the_firmware():
    import serial

    with serve_robot("so101_follower") as arm:
        arm.bus.servo(1).set("Return_Delay_Time", 0)
        host = serial.Serial(arm.port, 1_000_000, timeout=0.2)
        ping = feetech.instruction_packet(1, feetech.PING)
        heard_before = arm.bus.stats.instructions
        for _ in range(100):  # 120 kB of replies that nobody reads: more than the pty holds
            host.write(ping * 200)
        # a stalled firmware would stop hearing the pings after the first few kB of replies
        deadline = time.monotonic() + 60.0
        while arm.bus.stats.instructions - heard_before < 100 * 200:
            assert time.monotonic() < deadline, f"the firmware stopped hearing the host: {arm.bus.stats}"
            time.sleep(0.05)
        assert arm.bus.stats.overflowed > 0
        while host.read(4096):  # drain what the pty still holds: the host reads again
            pass
        host.write(feetech.instruction_packet(1, feetech.READ, bytes([3, 2])))
        assert host.read(8) == feetech.status_packet(1, 0, (777).to_bytes(2, "little"))
        host.close()


def test_scs0009_protocol_1_is_big_endian_and_has_no_sync_read():
    from edgevla.firmware import VirtualBus, VirtualServo
    from edgevla.hardware import load_servo

    bus = VirtualBus("feetech", [VirtualServo(load_servo("scs0009"), 0.0)], clock=lambda: 0.0)
    read = feetech.instruction_packet(1, feetech.READ, bytes([56, 2]))
    assert replies(bus, read) == [feetech.status_packet(1, 0, b"\x02\x00")]  # 512 = 0x0200, high byte first
    sync = feetech.instruction_packet(feetech.BROADCAST_ID, feetech.SYNC_READ, bytes([56, 2, 1]))
    assert replies(bus, sync) == []


def test_dynamixel_reg_write_waits_for_a_broadcast_action():
    bus = bus_for("koch_follower")
    reg_write = dynamixel.instruction_packet(4, dynamixel.REG_WRITE, bytes([64, 0, 1]))
    assert replies(bus, reg_write) == [dynamixel.status_packet(4, 0)]
    assert not bus.servo(4).torque and bus.servo(4).get("Registered_Instruction") == 1
    assert replies(bus, dynamixel.instruction_packet(dynamixel.BROADCAST_ID, dynamixel.ACTION)) == []
    assert bus.servo(4).torque and bus.servo(4).get("Registered_Instruction") == 0
