"""Byte-message links the protocol runs over: a websocket, or length-prefixed frames on a pipe.

Both ends of both transports see the same three calls (send, recv, close), so the handshake and
request logic in `session.py` exists once. A link that fails raises `LinkClosed`.
"""

from __future__ import annotations

import contextlib
import select
import struct
import threading
from typing import BinaryIO, Protocol

from edgevla.errors import EdgevlaError
from edgevla.runtime.wire import MAX_MESSAGE_BYTES, WireError

_LENGTH = struct.Struct(">I")


class LinkClosed(EdgevlaError):
    """The peer went away (process died, connection dropped). Reconnecting may help."""


class Link(Protocol):
    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> bytes:
        """Next message; `LinkClosed` when the peer is gone or nothing came within `timeout` s."""
        ...

    def close(self) -> None: ...

    def set_max_bytes(self, max_bytes: int) -> None:
        """Largest message `recv` accepts from now on; bigger ones drop the link unread."""
        ...


class PipeLink:
    """Frames as 4-byte big-endian length + payload over a pair of binary streams.

    A `recv` timeout needs an unbuffered reader (select() cannot see Python's buffer).
    """

    def __init__(self, reader: BinaryIO, writer: BinaryIO, max_bytes: int = MAX_MESSAGE_BYTES):
        self.reader, self.writer, self.max_bytes = reader, writer, max_bytes
        self._send_lock = threading.Lock()

    def _read_exactly(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            part = self.reader.read(left)
            if not part:
                raise LinkClosed("worker pipe closed")
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def recv(self, timeout: float | None = None) -> bytes:
        try:
            if timeout is not None and not select.select([self.reader], [], [], timeout)[0]:
                raise LinkClosed(f"worker sent nothing for {timeout:.0f} s")
            (n,) = _LENGTH.unpack(self._read_exactly(_LENGTH.size))
            if n > self.max_bytes:
                # the stream cannot be resynchronised after an oversized frame: drop the link
                raise WireError(f"frame of {n} bytes exceeds the limit of {self.max_bytes}")
            return self._read_exactly(n)
        except (OSError, ValueError) as err:
            raise LinkClosed(f"worker pipe failed: {err}") from None

    def send(self, data: bytes) -> None:
        try:
            with self._send_lock:
                self.writer.write(_LENGTH.pack(len(data)) + data)
                self.writer.flush()
        except (OSError, ValueError) as err:
            raise LinkClosed(f"worker pipe failed: {err}") from None

    def set_max_bytes(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def close(self) -> None:
        for stream in (self.writer, self.reader):
            with contextlib.suppress(OSError):
                stream.close()


class WebSocketLink:
    """A websockets (sync API) connection, client or server side; `peer` names the other end."""

    def __init__(self, connection, peer: str = "server"):
        self.connection, self.peer = connection, peer
        self._send_lock = threading.Lock()  # the dual system answers from two threads

    def recv(self, timeout: float | None = None) -> bytes:
        from websockets.exceptions import ConnectionClosed

        try:
            data = self.connection.recv(timeout)
        except TimeoutError:
            raise LinkClosed(f"{self.peer} sent nothing for {timeout:.1f} s") from None
        except ConnectionClosed as err:
            raise LinkClosed(f"connection closed ({err})") from None
        except OSError as err:
            raise LinkClosed(f"connection failed: {err}") from None
        if isinstance(data, str):
            raise WireError("expected a binary websocket message, got text")
        return data

    def send(self, data: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            with self._send_lock:
                self.connection.send(data)
        except (ConnectionClosed, OSError) as err:
            raise LinkClosed(f"connection closed ({err})") from None

    def set_max_bytes(self, max_bytes: int) -> None:
        # websockets checks each frame's declared length against this before reading its body
        # (and closes with 1009); it reads the limit afresh for every frame
        self.connection.protocol.max_message_size = max_bytes

    def close(self) -> None:
        self.connection.close()
