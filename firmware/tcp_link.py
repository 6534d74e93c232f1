"""Serve a virtual bus on TCP, for hosts that open pyserial's `socket://HOST:PORT` URLs.

A serial-to-network bridge (ser2net, an ESP32 bridge) looks like this to the host. TCP carries
no baud rate, so every servo hears every byte. One client at a time, as on a serial line.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading

from edgevla.errors import EdgevlaError
from edgevla.firmware.bus import VirtualBus


class TcpServer:
    def __init__(self, bus: VirtualBus, host: str = "127.0.0.1", port: int = 0):
        self.bus = bus
        try:
            self._listener = socket.create_server((host, port))
        except OSError as err:
            raise EdgevlaError(f"--tcp {host}:{port}: cannot listen: {err.strerror}") from None
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"firmware-tcp-{self.port}", daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def start(self) -> TcpServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._listener, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                client, _ = self._listener.accept()
                with client:
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if self._serve_client(client):
                        return
        except BaseException as err:  # surfaced by close()
            self.error = err

    def _serve_client(self, client: socket.socket) -> bool:
        """Answer one client until it hangs up (False) or the server stops (True)."""
        while True:
            ready = self.bus.wait_for_host([client.fileno(), self._stop_r])
            if self._stop_r in ready:
                return True
            try:
                data = client.recv(4096)
            except ConnectionError:
                return False
            if not data:
                return False
            for tx in self.bus.receive(data, None):
                tx.wait()
                try:  # never block on a client that stopped reading: drop what does not fit
                    sent = client.send(tx.packet, socket.MSG_DONTWAIT)
                except (BlockingIOError, ConnectionError):
                    sent = 0
                if sent < len(tx.packet):
                    self.bus.stats.overflowed += 1

    def close(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
        self._listener.close()
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.error is not None:
            raise RuntimeError(f"virtual firmware on {self.url} stopped: {self.error!r}") from self.error
