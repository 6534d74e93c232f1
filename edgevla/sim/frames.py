"""How rendered camera frames leave the simulator process: a Unix socket, one request per frame.

The simulator renders its cameras every tick and `FrameServer.publish`es them; any process reads
them with `FrameClient` (what the `sim:NAME` camera source does for `edgevla record`/`run`).
Pull, not push: a client asks for "camera NAME, newer than seq S" and gets the newest frame as
soon as there is one, so a slow reader never builds a backlog and always sees the latest image.

Messages are msgpack maps framed by a 4-byte big-endian length (never pickle):
    request  {"camera": str, "after": int}
    reply    {"seq": int, "time": float, "height": int, "width": int, "data": bytes}  (RGB uint8)
             or {"error": str}
`time` is time.monotonic() of the render, comparable across processes on one machine.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import msgpack
import numpy as np

from edgevla.errors import EdgevlaError

MAX_MESSAGE = 64 << 20  # bytes; a 4K RGB frame is 25 MB
# A request with no newer frame in this time gets an error reply. Rendering pauses while a scene
# changes (the world is held still while the arms are reset); with 2 s here, two 50-episode evals
# on a 2-core host with half its CPU stolen ended on this reply; a simulator counts as stalled after 10 s.
WAIT_S = 10.0


def default_socket() -> Path:
    """Where `edgevla sim serve` publishes and `sim:NAME` cameras look, unless told otherwise."""
    env = os.environ.get("EDGEVLA_SIM_SOCKET")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"edgevla-sim-{os.getuid()}.sock"


@dataclass(frozen=True)
class SimFrame:
    seq: int
    time: float
    image: np.ndarray  # uint8 (H, W, 3)


def _send(sock: socket.socket, message: dict) -> None:
    payload = msgpack.packb(message, use_bin_type=True)
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def _receive_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> dict:
    (size,) = struct.unpack(">I", _receive_exact(sock, 4))
    if size > MAX_MESSAGE:
        raise ConnectionError(f"message of {size} bytes exceeds {MAX_MESSAGE}")
    message = msgpack.unpackb(_receive_exact(sock, size), raw=False, strict_map_key=True)
    if not isinstance(message, dict):
        raise ConnectionError("message is not a map")
    return message


class FrameServer:
    """Keeps the latest frame of each camera and answers clients from one thread per client."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._frames: dict[str, SimFrame] = {}
        self._changed = threading.Condition()
        self._closed = threading.Event()
        if self.path.exists():
            self.path.unlink()  # a stale socket of a previous run; a live one would still be bound
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen()
        threading.Thread(target=self._accept, name="sim-frames", daemon=True).start()

    def publish(self, camera: str, image: np.ndarray, when: float) -> None:
        with self._changed:
            previous = self._frames.get(camera)
            seq = previous.seq + 1 if previous else 0
            self._frames[camera] = SimFrame(seq, when, np.ascontiguousarray(image, dtype=np.uint8))
            self._changed.notify_all()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.path.unlink(missing_ok=True)
        with self._changed:
            self._changed.notify_all()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="sim-frames-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while not self._closed.is_set():
                try:
                    request = _receive(conn)
                except (ConnectionError, OSError, ValueError, struct.error, msgpack.ExtraData):
                    return
                camera, after = request.get("camera"), request.get("after", -1)
                if not isinstance(camera, str) or not isinstance(after, int):
                    _send(conn, {"error": "request must be {camera: str, after: int}"})
                    continue
                with self._changed:
                    # an unknown camera fails at once; a known one waits for its next frame
                    ready = camera in self._frames and self._changed.wait_for(
                        lambda c=camera, a=after: self._closed.is_set() or self._frames[c].seq > a,
                        timeout=WAIT_S,
                    )
                    frame = self._frames.get(camera)
                if not ready or frame is None or self._closed.is_set():
                    known = ", ".join(sorted(self._frames)) or "none yet"
                    _send(conn, {"error": f"no new frame from camera '{camera}' (cameras: {known})"})
                    continue
                height, width = frame.image.shape[:2]
                reply = {"seq": frame.seq, "time": frame.time, "height": height, "width": width}
                try:
                    _send(conn, {**reply, "data": frame.image.tobytes()})
                except OSError:
                    return


class FrameClient:
    """One connection to a simulator's frame socket."""

    def __init__(self, path: Path, timeout_s: float = 5.0):
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        try:
            self._sock.connect(str(self.path))
        except OSError as err:
            self._sock.close()
            raise EdgevlaError(
                f"no simulator at {self.path} ({err.strerror}): start one with 'edgevla sim serve' "
                "or pass ?socket=PATH"
            ) from None

    def next_frame(self, camera: str, after: int = -1) -> SimFrame:
        """The newest frame of `camera` with a seq above `after` (waits for it)."""
        try:
            _send(self._sock, {"camera": camera, "after": after})
            reply = _receive(self._sock)
        except (OSError, ConnectionError) as err:
            raise EdgevlaError(f"simulator at {self.path} stopped answering: {err}") from None
        if "error" in reply:
            raise EdgevlaError(f"simulator at {self.path}: {reply['error']}")
        try:
            shape = (int(reply["height"]), int(reply["width"]), 3)
            image = np.frombuffer(reply["data"], dtype=np.uint8).reshape(shape)
            return SimFrame(int(reply["seq"]), float(reply["time"]), image)
        except (KeyError, TypeError, ValueError) as err:
            raise EdgevlaError(f"simulator at {self.path} sent a malformed frame: {err}") from None

    def close(self) -> None:
        self._sock.close()
