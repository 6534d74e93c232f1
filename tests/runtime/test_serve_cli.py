"""`edgevla serve` as a user starts it: a real process, a real port, Ctrl-C to stop."""

import signal
import subprocess
import sys

import numpy as np
import pytest

from edgevla.hosting import open_policy
from edgevla.runtime.wire import Refused

from .helpers import expect, start_serve, write_replay


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_command_serves_until_interrupted(tmp_path, signum):
    log = tmp_path / "serve.log"
    proc, url = start_serve(write_replay(tmp_path / "wave.npz"), "--token", "t0k", log=log)
    client = None
    try:
        client = open_policy(url, transport="remote", expect=expect(), token="t0k")
        chunk = client.infer({"observation.state": np.zeros(6, np.float32), "task": "wave", "timestamp": 1.0})
        assert chunk.shape == (10, 6)
        with pytest.raises(Refused, match="token"):
            open_policy(url, transport="remote", expect=expect(), token="guess")
    finally:  # stopped with a client still connected, as a service stop finds it
        proc.send_signal(signum)
        proc.communicate(timeout=20)
        if client is not None:
            client.close()
    assert proc.returncode == 130
    assert "Traceback" not in log.read_text()


def test_serve_with_a_missing_policy_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "serve", "--policy", "/nonexistent/wave.npz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "wave.npz" in result.stderr


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "-1"], "--port"),
        (["--max-message-mb", "-1"], "--max-message-mb"),
        (["--max-message-mb", "0"], "--max-message-mb"),
        (["--max-message-mb", "nan"], "--max-message-mb"),
        (["--max-message-mb", "inf"], "--max-message-mb"),
        (["--max-connections", "0"], "--max-connections"),
        (["--max-connections-per-ip", "0"], "--max-connections-per-ip"),
        (["--max-connections", "4", "--max-connections-per-ip", "8"], "--max-connections-per-ip"),
        (["--hello-timeout", "0"], "--hello-timeout"),
        (["--hello-timeout", "nan"], "--hello-timeout"),
        (["--token", ""], "--token"),
        (["--token", "x" * 1025], "--token"),
        (["--host", " "], "--host"),
    ],
)
def test_every_serve_flag_is_checked_with_one_line_naming_it(tmp_path, capsys, flags, named):
    from edgevla.cli import main

    # checked before the policy is even loaded: the missing file is never reached
    assert main(["serve", "--policy", str(tmp_path / "missing.npz"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"edgevla serve: error: {named} must"), err
