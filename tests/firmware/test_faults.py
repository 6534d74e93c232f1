"""Fault injection: drop/corrupt at the configured rates (seeded), delays, silent servos."""

from __future__ import annotations

import pytest
import scservo_sdk as scs

from edgevla.errors import EdgevlaError
from edgevla.firmware import Faults, build_bus, dynamixel, feetech, serve_robot

from .helpers import sdk_call

N = 2000


def ping_all(bus, protocol, n=N) -> list[bytes | None]:
    """Ping id 1 n times; the status packet as received, None when it was lost."""
    out = []
    for _ in range(n):
        txs = bus.receive(protocol.instruction_packet(1, protocol.PING))
        out.append(txs[0].packet if txs else None)
    return out


@pytest.mark.parametrize(("robot", "protocol"), [("so101_follower", feetech), ("koch_follower", dynamixel)])
def test_corruption_rate_and_every_corruption_is_detectable(robot, protocol):
    bus = build_bus(robot, faults=Faults(corrupt=0.1, seed=7), clock=lambda: 0.0)
    clean = ping_all(build_bus(robot, clock=lambda: 0.0), protocol, 1)[0]
    received = ping_all(bus, protocol)
    bad = [p for p in received if p != clean]
    assert len(bad) == bus.corrupted
    assert 0.1 * N - 60 < len(bad) < 0.1 * N + 60  # binomial sd ~13
    for packet in bad:  # one flipped byte always breaks the checksum / CRC (or the header)
        if protocol is feetech:
            assert packet[:2] != b"\xff\xff" or feetech.checksum(packet[2:-1]) != packet[-1]
        else:
            assert dynamixel.crc16(packet[:-2]) != packet[-2] | packet[-1] << 8


def test_drop_rate_with_a_seed_is_reproducible():
    runs = []
    for _ in range(2):
        bus = build_bus("so101_follower", faults=Faults(drop=0.05, seed=3), clock=lambda: 0.0)
        runs.append(ping_all(bus, feetech))
    assert runs[0] == runs[1]
    lost = runs[0].count(None)
    assert lost == bus.dropped
    assert 0.05 * N - 40 < lost < 0.05 * N + 40
    other = ping_all(
        build_bus("so101_follower", faults=Faults(drop=0.05, seed=4), clock=lambda: 0.0), feetech
    )
    assert other != runs[0]


def test_silent_ids_neither_answer_nor_act():
    bus = build_bus("so101_follower", faults=Faults(silent_ids={3, 5}), clock=lambda: 0.0)
    assert bus.receive(feetech.instruction_packet(3, feetech.PING)) == []
    bus.receive(feetech.instruction_packet(3, feetech.WRITE, bytes([40, 1])))
    assert not bus.servo(3).torque
    sync = feetech.instruction_packet(
        feetech.BROADCAST_ID, feetech.SYNC_READ, bytes([56, 2, 1, 2, 3, 4, 5, 6])
    )
    assert [tx.packet[2] for tx in bus.receive(sync)] == [1, 2, 4, 6]


def test_silent_ids_fall_silent_mid_run_after_silent_after_s():
    now = [0.0]
    bus = build_bus("so101_follower", faults=Faults(silent_ids={4}, silent_after_s=2.0), clock=lambda: now[0])
    ping = feetech.instruction_packet(4, feetech.PING)
    assert len(bus.receive(ping)) == 1  # answers while its cable holds
    now[0] = 2.0
    assert bus.receive(ping) == []  # then sends nothing at all, like an unplugged servo
    assert len(bus.receive(feetech.instruction_packet(3, feetech.PING))) == 1  # the others go on


def test_delay_is_added_to_every_status_packet():
    bus = build_bus("so101_follower", faults=Faults(delay_ms=4), clock=lambda: 0.0)
    (tx,) = bus.receive(feetech.instruction_packet(1, feetech.PING))
    assert tx.delay_s == pytest.approx(0.004 + 0.0005)


@pytest.mark.parametrize(
    "bad", [{"drop": 1.5}, {"corrupt": -0.1}, {"delay_ms": -1}, {"silent_after_s": float("nan")}]
)
def test_bad_fault_settings_are_refused(bad):
    with pytest.raises(EdgevlaError):
        Faults(**bad)


def test_sdk_sees_corrupt_packets_and_nothing_hangs():
    with serve_robot("so101_follower", faults=Faults(corrupt=0.3, seed=1)) as arm:
        port = scs.PortHandler(arm.port)
        assert port.openPort() and port.setBaudRate(1_000_000)
        ph = scs.PacketHandler(0)
        results = [sdk_call(port, ph.read2ByteTxRx, 2, 56)[1] for _ in range(40)]
        port.closePort()
    assert scs.COMM_SUCCESS in results
    assert scs.COMM_RX_CORRUPT in results or scs.COMM_RX_TIMEOUT in results
    assert arm.bus.corrupted > 0
