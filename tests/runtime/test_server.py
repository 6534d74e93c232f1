"""A real websocket server on 127.0.0.1 serving a real (replay) policy to real clients."""

import subprocess
import sys
import threading
from pathlib import Path

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from edgevla.hosting import open_policy
from edgevla.policy_io import Expectation
from edgevla.runtime.link import LinkClosed
from edgevla.runtime.replay import ReplayPolicy
from edgevla.runtime.server import PolicyServer
from edgevla.runtime.wire import ErrorMessage, Hello, Refused, Welcome, decode, encode
from edgevla.runtime.workers import connect_websocket

from .helpers import expect, wave_actions

TOKEN = "correct horse battery staple"
OBS = {"observation.state": np.zeros(6, np.float32), "task": "wave"}


@pytest.fixture
def server():
    srv = PolicyServer(ReplayPolicy(wave_actions(), 30.0, 10, "wave"), port=0, token=TOKEN, max_bytes=1 << 20)
    srv.start()
    yield srv
    srv.close()


def _raw_exchange(url: str, *frames: bytes) -> list:
    """Send frames as a misbehaving client would; return what came back before the close."""
    replies = []
    with connect(url, max_size=None) as ws:
        try:
            for frame in frames:
                ws.send(frame)
            while True:
                replies.append(decode(ws.recv(timeout=5)))
        except ConnectionClosed as closed:
            replies.append(closed.rcvd.code if closed.rcvd else None)
    return replies


def _hello(**overrides) -> bytes:
    return encode(
        Hello(expect=overrides.pop("expect", expect()), token=overrides.pop("token", TOKEN), **overrides)
    )


def test_client_with_token_gets_chunks(server):
    policy = open_policy(server.url, transport="remote", expect=expect(), token=TOKEN)
    try:
        assert policy.spec.name == "wave" and policy.spec.chunk_size == 10
        chunk = policy.infer(OBS)
        assert chunk.shape == (10, 6) and chunk.dtype == np.float32
        np.testing.assert_allclose(chunk[0], wave_actions()[0])
    finally:
        policy.close()


@pytest.mark.parametrize("token", ["wrong", None, TOKEN + "x", TOKEN[:-1]])
def test_wrong_or_missing_token_is_refused(server, token):
    with pytest.raises(Refused, match="wrong or missing token"):
        open_policy(server.url, transport="remote", expect=expect(), token=token)


def test_handshake_for_another_model_is_refused_clearly(server):
    with pytest.raises(Refused, match="state of 6 values, the robot has 7"):
        open_policy(server.url, transport="remote", expect=expect(joints=7), token=TOKEN)
    with pytest.raises(Refused, match="needs camera|asked for 'pi0'"):
        open_policy(
            server.url, transport="remote", expect=Expectation(6, 6, (), 30.0, policy="pi0"), token=TOKEN
        )
    replies = _raw_exchange(server.url, encode(Hello(expect=expect(), token=TOKEN, version=99)))
    assert isinstance(replies[0], ErrorMessage) and "protocol v99" in replies[0].message


def test_bad_clients_get_clean_errors_while_a_good_client_keeps_being_served(server):
    good = open_policy(server.url, transport="remote", expect=expect(), token=TOKEN)
    try:
        valid = good.infer(OBS)
        bad_sessions = [
            [b"\x93\x01\x02"],  # msgpack, but not a message
            [b"\xc1\xff\x00garbage"],  # not msgpack at all
            [
                msgpack.packb(
                    {
                        "type": "hello",
                        "version": 1,
                        "token": TOKEN,
                        "jpeg": False,
                        "expect": {"state_dim": "six"},
                    }
                )
            ],
            [
                _hello(),
                msgpack.packb({"type": "infer", "id": "one", "obs": {}}),
            ],  # wrong types after a handshake
            [_hello(), encode(Hello(expect=expect(), token=TOKEN))],  # out of order
        ]
        for frames in bad_sessions:
            replies = _raw_exchange(server.url, *frames)
            errors = [r for r in replies if isinstance(r, ErrorMessage)]
            assert len(errors) == 1 and errors[0].message, replies
            np.testing.assert_array_equal(good.infer(OBS).shape, valid.shape)  # the good client is untouched
        # a frame above the server's max size is cut off by websockets (1009) before it is buffered
        assert _raw_exchange(server.url, _hello(), b"\x00" * (2 << 20))[-1] == 1009
        assert good.infer(OBS).shape == (10, 6)
        # a text frame instead of a binary one
        replies = _raw_exchange(server.url, "hello")
        assert isinstance(replies[0], ErrorMessage) and "binary" in replies[0].message
        assert good.infer(OBS).shape == (10, 6)
    finally:
        good.close()


def test_several_robots_share_one_server(server):
    results, errors = {}, []

    def robot(i: int):
        try:
            policy = open_policy(server.url, transport="remote", expect=expect(), token=TOKEN)
            results[i] = [policy.infer(OBS).shape for _ in range(20)]
            policy.close()
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=robot, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert results == {i: [(10, 6)] * 20 for i in range(4)}


def test_dropped_connection_reconnects_with_backoff():
    policy_file = ReplayPolicy(wave_actions(), 30.0, 10, "wave")
    first = PolicyServer(policy_file, port=0).start()
    port = first.port
    client = open_policy(first.url, transport="remote", expect=expect())
    client.backoff_s = (0.05, 0.2)
    assert client.infer(OBS).shape == (10, 6)
    first.close()  # the server goes away mid-run
    with pytest.raises(LinkClosed):
        client.infer(OBS)
    second = PolicyServer(policy_file, port=port).start()
    try:
        assert client.infer(OBS).shape == (10, 6)  # reconnects by itself
        assert client.reconnects == 1
    finally:
        client.close()
        second.close()


def test_unreachable_server_is_one_clear_line():
    with pytest.raises(LinkClosed, match="cannot reach ws://127.0.0.1:9"):
        connect_websocket("ws://127.0.0.1:9")


def test_welcome_carries_the_full_policy_spec(server):
    with connect(server.url) as ws:
        ws.send(_hello())
        welcome = decode(ws.recv(timeout=5))
    assert isinstance(welcome, Welcome) and welcome.spec == server.policy.spec


def test_accept_running_out_of_open_files_is_survived_and_logged_once():
    # something else in the process took every file: accept() fails with EMFILE, which used to
    # end websockets' accept loop and with it the server (the scenario: out_of_files_child.py)
    child = subprocess.run(
        [sys.executable, "-m", "tests.runtime.out_of_files_child"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert child.stderr.count("cannot accept connections: Too many open files (EMFILE)") == 1
    assert child.stderr.count("refused a connection from 127.0.0.1: out of open files") == 1
