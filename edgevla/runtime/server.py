"""`edgevla serve`: one policy served over websockets to any number of robots.

Each connection gets its own thread and its own session state (handshake, JPEG setting);
inference is serialised on the one policy. A client that misbehaves is answered with an error
and dropped without disturbing the others. Bound to localhost unless told otherwise.
"""

from __future__ import annotations

import logging
import threading

from edgevla.policy_io import Policy
from edgevla.runtime.link import WebSocketLink
from edgevla.runtime.session import serve_session
from edgevla.runtime.wire import MAX_MESSAGE_BYTES

log = logging.getLogger("edgevla.runtime")


class PolicyServer:
    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ):
        from websockets.sync.server import serve

        self.policy, self.token, self.max_bytes = policy, token, max_bytes
        self._infer_lock = threading.Lock()
        # max_size: websockets closes a connection (code 1009) before buffering a bigger frame
        self._server = serve(self._handle, host, port, max_size=max_bytes, compression=None)
        self.host, self.port = self._server.socket.getsockname()[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _handle(self, connection) -> None:
        peer = "{}:{}".format(*connection.remote_address[:2])
        serve_session(
            WebSocketLink(connection),
            self.policy,
            token=self.token,
            infer_lock=self._infer_lock,
            max_bytes=self.max_bytes,
            peer=peer,
        )

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> PolicyServer:
        """Serve from a background thread (tests, or embedding in another program)."""
        self._thread = threading.Thread(target=self.serve_forever, name="edgevla-server", daemon=True)
        self._thread.start()
        return self

    @property
    def serving(self) -> bool:
        """Whether the background thread `start` began is still serving."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
