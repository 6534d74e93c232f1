"""Hostile-client probes of `edgevla serve`, as issue 19 ran them, with the server's memory.

Starts `edgevla serve` (the shipped demo policy by default, with a token) in a child process
and runs, one after another:
  idle       idle TCP connections from one address, then spread over many addresses;
  hellos     strangers each sending a 16 MB hello at once (each from its own address, so the
             per-address cap does not hide the message limit);
  jpegs      clients with the token each sending a 4096x4096 JPEG (each from its own address);
then checks that a robot is still served. Other loopback addresses (127.0.0.x, Linux) stand in
for other machines. For each probe: the server's resident memory before, at peak and after
(VmRSS, VmHWM from /proc; the peak is reset per probe), and connections held and refused.

    python benchmarks/hostile_serve.py [--policy DIR] [--json]

Its probe primitives (raw connections from an address, their first answers, a frame header,
the memory of a pid) are the ones tests/runtime/test_serve_hostile.py runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
from websockets.sync.client import connect

from edgevla.hosting import open_policy
from edgevla.runtime.wire import ErrorMessage, Expectation, Hello, InferRequest, Welcome, decode, encode

DEMO_POLICY = Path(__file__).resolve().parents[1] / "edgevla/assets/small-reach/onnx-int8"
TOKEN = "probe-token"
EXPECT = Expectation(state_dim=6, action_dim=6, cameras=("front",), fps=30.0)
UPGRADE = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Server:
    """`edgevla serve` in a child process, and its memory figures."""

    def __init__(self, policy: Path, log: Path):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgevla",
                "serve",
                "--policy",
                str(policy),
                "--port",
                "0",
                "--token",
                TOKEN,
            ],
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        line = self.proc.stdout.readline()
        match = re.search(r"on (ws://127\.0\.0\.1:(\d+))", line)
        if not match:
            self.proc.kill()
            raise SystemExit(f"serve did not start: {log.read_text()}")
        self.url, self.port = match.group(1), int(match.group(2))

    def kib(self, field: str) -> int:
        return memory_kib(self.proc.pid, field)

    def reset_peak(self) -> None:
        # "5" resets VmHWM to the current RSS (Linux >= 4.0); without it the peak is cumulative
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def stop(self) -> int | None:
        alive = self.proc.poll() is None
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return None if alive else self.proc.returncode


def _source(i: int) -> str:
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


# --- probe primitives -----------------------------------------------------------------------


def connect_from(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the local `port` from the loopback address `source`."""
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def upgraded(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A raw websocket past its HTTP upgrade, that has said nothing yet."""
    sock = connect_from(port, source)
    sock.sendall(UPGRADE.format(port=port).encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"the server closed the upgrade: {reply!r}")
        reply += chunk
    if not reply.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"the server refused the upgrade: {reply[:40]!r}")
    return sock


def frame_header(length: int) -> bytes:
    """A final binary frame of `length` bytes, masked with a zero key (the payload goes as is)."""
    return bytes([0x82, 0x80 | 127]) + length.to_bytes(8, "big") + bytes(4)


def count_refused(answers: list[bytes | None]) -> int:
    """How many connections the server refused: closed at once, without a word."""
    return answers.count(b"")


def memory_kib(pid: int, field: str) -> int:
    """A memory figure of `pid` from /proc (VmRSS: resident now; VmHWM: resident at peak), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} in /proc/{pid}/status")


def first_answers(socks: list[socket.socket], wait_s: float) -> list[bytes | None]:
    """What each socket got within `wait_s`: its first bytes, b"" if closed, None if nothing."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    deadline, ready = time.monotonic() + wait_s, set()
    while len(ready) < len(socks) and time.monotonic() < deadline:
        ready |= {fd for fd, _ in poller.poll(50)}
    answers = []
    for sock in socks:
        try:
            answers.append(sock.recv(4096) if sock.fileno() in ready else None)
        except ConnectionResetError:
            answers.append(b"")
    return answers


def _measured(server: Server, probe) -> dict:
    server.reset_peak()
    before = server.kib("VmRSS")
    figures = probe()
    peak = server.kib("VmHWM")
    time.sleep(1.0)  # the server lets go of what the probe made it hold
    return {
        "rss_mb_before": round(before / 1024, 1),
        "rss_mb_peak": round(peak / 1024, 1),
        "rss_mb_after": round(server.kib("VmRSS") / 1024, 1),
        **figures,
        "server_alive": server.proc.poll() is None,
    }


def probe_idle(server: Server, count: int, addresses: int) -> dict:
    socks = []
    try:
        for i in range(count):
            socks.append(connect_from(server.port, _source(i % addresses)))
        answers = first_answers(socks, 2.0)
    finally:
        for sock in socks:
            sock.close()
    return {
        "connections": count,
        "addresses": addresses,
        "held": answers.count(None),
        "refused": count_refused(answers),
    }


def probe_hellos(server: Server, count: int, megabytes: int) -> dict:
    hello = memoryview(
        msgpack.packb({"type": "hello", "version": 1, "token": "x" * (megabytes * 10**6 - 100)})
    )
    cut_off = []

    def stranger(i: int) -> None:
        with upgraded(server.port, _source(i)) as sock:
            try:
                sock.sendall(frame_header(len(hello)))
                sock.sendall(hello)
                # the server's close frame (0x88, code 1009: too big) or the end of the stream
                answer = first_answers([sock], 5.0)[0]
                cut_off.append(answer is not None and answer[:1] in (b"\x88", b""))
            except OSError:
                cut_off.append(True)

    threads = [threading.Thread(target=stranger, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return {"strangers": count, "hello_mb": megabytes, "cut_off": sum(cut_off)}


def probe_jpegs(server: Server, count: int, side: int) -> dict:
    y, x = np.mgrid[0:side, 0:side]
    image = np.stack([x * 256 // side, y * 256 // side, (x + y) * 128 // side], axis=-1).astype(np.uint8)
    obs = {"observation.state": np.zeros(6, np.float32), "task": "reach", "observation.images.front": image}
    request = encode(InferRequest(id=0, obs=obs), jpeg=True)
    del image, obs
    replies = []

    def client(i: int) -> None:
        with connect(server.url, source_address=(_source(i), 0), max_size=None, compression=None) as ws:
            ws.send(encode(Hello(expect=EXPECT, token=TOKEN, jpeg=True)))
            if not isinstance(decode(ws.recv(timeout=30)), Welcome):
                replies.append("no welcome")
                return
            ws.send(request)
            reply = decode(ws.recv(timeout=60))
            replies.append(reply.message if isinstance(reply, ErrorMessage) else type(reply).__name__)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return {
        "clients": count,
        "jpeg_side": side,
        "jpeg_kb_on_wire": round(len(request) / 1024),
        "refused_before_decoding": sum("larger than" in r for r in replies),
        "example_reply": replies[0] if replies else None,
    }


def robot_served(server: Server) -> bool:
    robot = open_policy(server.url, transport="remote", expect=EXPECT, token=TOKEN)
    try:
        obs = {
            "observation.state": np.zeros(6, np.float32),
            "observation.images.front": np.zeros((96, 96, 3), np.uint8),
            "task": "reach the red cube",
        }
        return robot.infer(obs).shape[1] == 6
    finally:
        robot.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEMO_POLICY)
    parser.add_argument("--idle", type=int, default=400, help="idle connections per idle probe")
    parser.add_argument("--hellos", type=int, default=30)
    parser.add_argument("--hello-mb", type=int, default=16)
    parser.add_argument("--jpeg-clients", type=int, default=20)
    parser.add_argument("--jpeg-side", type=int, default=4096)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        server = Server(args.policy, log)
        try:
            figures = {
                "idle_one_address": _measured(server, lambda: probe_idle(server, args.idle, 1)),
                "idle_many_addresses": _measured(server, lambda: probe_idle(server, args.idle, 100)),
                "hellos": _measured(server, lambda: probe_hellos(server, args.hellos, args.hello_mb)),
                "jpegs": _measured(server, lambda: probe_jpegs(server, args.jpeg_clients, args.jpeg_side)),
                "robot_served_after": robot_served(server),
            }
        finally:
            died_rc = server.stop()
        figures["server_died_rc"] = died_rc
        figures["server_log_lines"] = len(log.read_text().splitlines())
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            print(f"{name}: {value}")
    return 0 if figures["robot_served_after"] and died_rc is None else 1


if __name__ == "__main__":
    sys.exit(main())
