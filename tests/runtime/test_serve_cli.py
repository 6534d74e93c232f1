"""`edgevla serve` as a user starts it: a real process, a real port, Ctrl-C to stop."""

import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from edgevla.hosting import open_policy
from edgevla.runtime.wire import Refused

from .helpers import expect, write_replay


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgevla", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.search(r"on (ws://127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"no address in {line!r}: {proc.stderr.read()}")
    return proc, match.group(1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_command_serves_until_interrupted(tmp_path, signum):
    proc, url = _start("--policy", str(write_replay(tmp_path / "wave.npz")), "--port", "0", "--token", "t0k")
    client = None
    try:
        client = open_policy(url, transport="remote", expect=expect(), token="t0k")
        chunk = client.infer({"observation.state": np.zeros(6, np.float32), "task": "wave", "timestamp": 1.0})
        assert chunk.shape == (10, 6)
        with pytest.raises(Refused, match="token"):
            open_policy(url, transport="remote", expect=expect(), token="guess")
    finally:  # stopped with a client still connected, as a service stop finds it
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
        if client is not None:
            client.close()
    assert proc.returncode == 130
    assert "Traceback" not in err


def test_serve_with_a_missing_policy_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "serve", "--policy", "/nonexistent/wave.npz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "wave.npz" in result.stderr
