import os
import pty
import termios
import time

from edgevla.record.keyboard import NEXT, RERECORD, STOP, KeyboardControls


def _wait_for(keys, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = keys.poll()
        if event:
            return event
        time.sleep(0.01)
    return None


def test_raw_tty_keys_map_to_episode_controls_and_terminal_is_restored():
    master, slave = pty.openpty()
    with os.fdopen(slave, "rb", buffering=0) as stream:
        before = termios.tcgetattr(slave)
        with KeyboardControls(stream=stream) as keys:
            assert keys.enabled
            assert not termios.tcgetattr(slave)[3] & termios.ICANON  # raw-ish (cbreak) while recording
            for sequence, expected in (
                (b"\x1b[C", NEXT),
                (b"r", RERECORD),
                (b"\x1b[D", RERECORD),
                (b"q", STOP),
                (b"n", NEXT),
            ):
                os.write(master, sequence)
                assert _wait_for(keys) == expected
            os.write(master, b"x")  # other keys do nothing
            assert _wait_for(keys, timeout=0.3) is None
        assert termios.tcgetattr(slave) == before
    os.close(master)


def test_keyboard_is_off_with_no_keyboard_or_without_a_tty(tmp_path):
    master, slave = pty.openpty()
    with (
        os.fdopen(slave, "rb", buffering=0) as stream,
        KeyboardControls(enabled=False, stream=stream) as keys,
    ):
        os.write(master, b"q")
        assert not keys.enabled and _wait_for(keys, timeout=0.2) is None
    os.close(master)
    with open(tmp_path / "not-a-tty", "wb+") as stream, KeyboardControls(stream=stream) as keys:
        assert not keys.enabled
