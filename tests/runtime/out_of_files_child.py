"""Run by test_server.py in a process of its own: a server whose process has no open file left.

Alone because the scenario needs every descriptor taken and none freed until it is over: in the
test process, a thread or a garbage collection left over from an earlier test can close a file
at any moment, and the connection that then gets a descriptor waits for a websocket handshake
the raw socket never sends. Exits 0 when every check holds; the server's
log goes to stderr for the test to count its lines.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import resource
import socket

import numpy as np

from edgevla.hosting import open_policy
from edgevla.runtime.replay import ReplayPolicy
from edgevla.runtime.server import PolicyServer

from .helpers import expect, wave_actions

TOKEN = "correct horse battery staple"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    server = PolicyServer(ReplayPolicy(wave_actions(), 30.0, 10, "wave"), port=0, token=TOKEN)
    waiting = [socket.socket() for _ in range(3)]  # made while files remain
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    taken = []
    gc.disable()  # nothing this process holds may be closed behind the scenario's back
    try:
        # above the highest descriptor open (the server's reserve among them), so that the one
        # the reserve frees can be taken again
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 16, hard))
        with contextlib.suppress(OSError):
            while True:
                taken.append(open(os.devnull, "rb"))  # noqa: SIM115 - closed below
        # started only now, as when its thread runs late: the loop must need no new descriptor
        # (it made its selector in that thread once, failed, and the server never accepted)
        server.start()
        for sock in waiting:
            sock.connect(("127.0.0.1", server.port))
            sock.settimeout(10)
            # accepted with the file kept in reserve and closed at once: the peer sees the close
            assert sock.recv(100) == b"", "a connection got data instead of the close"
        assert server.serving, f"the server stopped: {server.stop_reason}"
    finally:
        for file in taken:
            file.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for sock in waiting:
            sock.close()
        gc.enable()
    client = open_policy(server.url, transport="remote", expect=expect(), token=TOKEN)
    chunk = client.infer({"observation.state": np.zeros(6, np.float32), "task": "wave"})
    assert chunk.shape == (10, 6), f"after the files came back, a chunk of {chunk.shape}"
    client.close()
    server.close()


if __name__ == "__main__":
    main()
