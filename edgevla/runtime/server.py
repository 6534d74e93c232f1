"""`edgevla serve`: one policy served over websockets to any number of robots.

The accept loop is ours, not websockets' `serve_forever` (which ends the server on the first
failed accept()): it decides who gets a connection (`admission.py`: a cap on all connections and
one per address), closes the rest at once, and survives accept errors, shedding pending
connections when the process runs out of open files. websockets then does the upgrade and the
framing of each admitted connection in a thread of ours. A connection has one deadline from
accept to an accepted hello, and may send at most HELLO_MAX_BYTES until then.

Each connection gets its own session state (handshake, JPEG setting, a dual-system client's
context); inference is serialised on the one policy, System 2 passes of dual-system clients
apart from the chunks, so one robot's System 2 never holds up any robot's chunk. A client that misbehaves is answered with an error and dropped without
disturbing the others. Bound to localhost unless told otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import threading
import time
from typing import Any

from edgevla.policy_io import Policy
from edgevla.runtime.admission import Admission, ConnectionLimits, Refusal, ThrottledLog, fit_open_files
from edgevla.runtime.link import WebSocketLink
from edgevla.runtime.session import serve_session
from edgevla.runtime.wire import HELLO_MAX_BYTES, MAX_MESSAGE_BYTES

log = logging.getLogger("edgevla.runtime")
WEBSOCKETS_LOG = logging.getLogger("edgevla.runtime.websockets")
ACCEPT_RETRY_S = 0.05  # pause after an accept error that shedding could not clear
CLOSE_TIMEOUT_S = 2.0  # for a peer's answer to our close frame; a stranger holds its slot this long at most
# websockets stops reading a connection with more than this many messages waiting (so at most 4
# are buffered, the one being read included); the protocol has one request in flight
MAX_QUEUE = 2
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE)
# accept() errors that mean the listening socket itself is gone: no retry can help
LISTENER_GONE = (errno.EBADF, errno.EINVAL, errno.ENOTSOCK)


class PolicyServer:
    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
        limits: ConnectionLimits | None = None,
    ):
        from websockets.sync.server import serve

        self.policy, self.token, self.max_bytes = policy, token, max_bytes
        self.limits = fit_open_files(limits or ConnectionLimits())
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        # websockets builds each connection (upgrade within the hello deadline, frames no bigger
        # than a hello until the session raises the limit); its own accept loop is never run
        self._websockets = serve(
            self._handle,
            sock=self._listener,
            compression=None,
            open_timeout=self.limits.hello_timeout_s,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=HELLO_MAX_BYTES,
            max_queue=MAX_QUEUE,
            logger=WEBSOCKETS_LOG,
        )
        # websockets (16) logs a stranger's broken upgrade as an error with a traceback, once per
        # connection; what happens to each connection is in our own log, once
        WEBSOCKETS_LOG.setLevel(logging.CRITICAL)
        self._admission = Admission(self.limits)
        self._refusals = ThrottledLog(log)
        self._accept_errors = ThrottledLog(log)
        self._infer_lock = threading.Lock()
        self._context_lock = threading.Lock()  # dual-system clients: System 2 passes, one at a time
        self._lock = threading.Lock()
        self._live: dict[socket.socket, threading.Thread] = {}  # admitted connections
        self._accepted_at = threading.local()
        # one file kept in reserve: closing it frees the descriptor that accepting (and at once
        # closing) a pending connection needs when the process has run out of them
        self._reserve = _open_reserve()
        self._wake_reader, self._wake_writer = socket.socketpair()
        # made here, not in the accept loop: every descriptor the loop needs is held before
        # `start` returns, so a process that runs out of files later cannot stop the loop starting
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.stop_reason: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections held now (admitted, not yet closed)."""
        return self._admission.held

    # --- accepting ------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Accept until `close`; a fault that ends it early is logged and kept in `stop_reason`."""
        try:
            while not self._closing.is_set():
                if any(key.fileobj is self._listener for key, _ in self._selector.select()):
                    self._accept_one()
        except Exception as err:
            self.stop_reason = f"the accept loop failed: {type(err).__name__}: {err}"
            log.exception("server on %s: %s", self.url, self.stop_reason)
            raise

    def _accept_one(self) -> None:
        try:
            sock, address = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return  # the peer gave up before we got to it
        except OSError as err:
            if self._closing.is_set():
                return
            if err.errno in LISTENER_GONE:
                raise
            self._survive_accept_error(err)
            return
        ip = address[0]
        refusal = self._admission.admit(ip)
        if refusal is not None:
            self._refuse(sock, ip, refusal)
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(sock, address), name=f"edgevla-client-{ip}", daemon=True
        )
        with self._lock:
            self._live[sock] = thread
        try:
            thread.start()
        except RuntimeError as err:  # the process cannot start another thread
            with self._lock:
                del self._live[sock]
            self._admission.release(ip)
            self._refuse(sock, ip, Refusal(f"cannot start a thread for it ({err})", server_wide=True))

    def _survive_accept_error(self, err: OSError) -> None:
        name = errno.errorcode.get(err.errno or 0, "?")
        if err.errno in OUT_OF_FILES:
            self._accept_errors.warn(
                name,
                f"cannot accept connections: {err.strerror} ({name}); refusing them until "
                "some close (raise the limit with `ulimit -n`, or lower --max-connections)",
            )
            if self._shed_one():
                return
        else:
            self._accept_errors.warn(name, f"accept() failed: {err.strerror} ({name}); still serving")
        self._closing.wait(ACCEPT_RETRY_S)  # a lasting failure must not spin this loop

    def _shed_one(self) -> bool:
        """Accept and close one pending connection with the reserve descriptor; False if none."""
        if self._reserve is None:
            self._reserve = _open_reserve()
            return False
        self._reserve.close()
        self._reserve = None
        try:
            sock, address = self._listener.accept()
        except OSError:
            return False
        else:
            sock.close()
            self._report(address[0], Refusal("out of open files", server_wide=True))
            return True
        finally:  # after the close above, which freed the descriptor the reserve takes back
            self._reserve = _open_reserve()

    def _report(self, ip: str, refusal: Refusal) -> None:
        key = refusal.reason if refusal.server_wide else ip
        self._refusals.warn(key, f"refused a connection from {ip}: {refusal.reason}")

    def _refuse(self, sock: socket.socket, ip: str, refusal: Refusal) -> None:
        # closed without a word: an HTTP 503 sent before the client's request races with the
        # websockets 16 client, which can fail on it with an AssertionError instead of an error
        # of its own that the robot side retries
        self._report(ip, refusal)
        sock.close()

    # --- one connection -------------------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, address: Any) -> None:
        try:
            sock.setblocking(True)
            self._accepted_at.value = time.monotonic()
            # the websocket upgrade (within the hello deadline), then `_handle`, then the close
            self._websockets.handler(sock, address)
        finally:
            with self._lock:
                self._live.pop(sock, None)
            self._admission.release(address[0])

    def _handle(self, connection) -> None:
        peer = "{}:{}".format(*connection.remote_address[:2])
        elapsed = time.monotonic() - self._accepted_at.value
        serve_session(
            WebSocketLink(connection, peer="client"),
            self.policy,
            token=self.token,
            infer_lock=self._infer_lock,
            context_lock=self._context_lock,
            max_bytes=self.max_bytes,
            hello_timeout_s=self.limits.hello_timeout_s - elapsed,
            peer=peer,
        )

    # --- running and stopping -------------------------------------------------------------------

    def start(self) -> PolicyServer:
        """Serve from a background thread (tests, or embedding in another program)."""
        self._thread = threading.Thread(target=self._serve_in_thread, name="edgevla-server", daemon=True)
        self._thread.start()
        return self

    def _serve_in_thread(self) -> None:
        with contextlib.suppress(Exception):  # logged and kept in stop_reason by serve_forever
            self.serve_forever()

    @property
    def serving(self) -> bool:
        """Whether the background thread `start` began is still serving."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop accepting, cut every connection and wait (briefly) for their threads."""
        if self._closing.is_set():
            return
        self._closing.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            live = dict(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # unblocks websockets' reader; its thread closes it
        for thread in live.values():
            thread.join(timeout=5)
        # after the join: the loop no longer selects on what is closed here
        for resource in (self._selector, self._listener, self._wake_reader, self._wake_writer, self._reserve):
            if resource is not None:
                resource.close()


def _open_reserve():
    try:
        return open(os.devnull, "rb")  # noqa: SIM115 - held open on purpose, closed by its owner
    except OSError:
        return None
