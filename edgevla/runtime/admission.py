"""Who gets a connection to `edgevla serve`: a cap on all connections and one per address.

From accept to close a connection costs the server about four open files and two threads,
whoever is at the other end, so these caps are what keep a flood of idle connections (from one
machine or many) from exhausting either. Refusals are logged once per address per interval
with a count (once in all for a server-wide refusal), never once per connection: a flood of
connections must not become a flood of log lines.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace

from edgevla.runtime.session import HELLO_TIMEOUT_S

log = logging.getLogger("edgevla.runtime")
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_MAX_PER_ADDRESS = 8
REPORT_INTERVAL_S = 10.0
FILES_PER_CONNECTION = 4  # its socket, and the wake-up socket pair and selector websockets gives it
FILES_KEPT_FREE = 32  # for what the server opens besides connections (logs, a policy's files)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    # from accept to an accepted hello, websocket upgrade included
    hello_timeout_s: float = HELLO_TIMEOUT_S


def fit_open_files(limits: ConnectionLimits) -> ConnectionLimits:
    """`limits` with max_connections lowered to what the process's open-file limit allows, so
    that connections are refused by the cap before opening files starts failing."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to fit
        return limits
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits
    allowed = max(1, (soft - _files_in_use() - FILES_KEPT_FREE) // FILES_PER_CONNECTION)
    if allowed >= limits.max_connections:
        return limits
    log.warning(
        "the open-file limit (%d) leaves room for %d connections: serving at most that many, not %d "
        "(raise the limit with `ulimit -n`)",
        soft,
        allowed,
        limits.max_connections,
    )
    return replace(limits, max_connections=allowed, max_per_address=min(limits.max_per_address, allowed))


def _files_in_use() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc (macOS): about what a Python process with a policy loaded holds
        return 64


@dataclass(frozen=True)
class Refusal:
    reason: str
    # a refusal for the whole server (its cap, its open files), not for one address; reported
    # once per interval whatever the address, so a flood from many addresses is one line too
    server_wide: bool


class Admission:
    """Counts the connections held, in all and per address; thread-safe."""

    def __init__(self, limits: ConnectionLimits):
        self.limits = limits
        self._lock = threading.Lock()
        self._per_address: Counter[str] = Counter()

    @property
    def held(self) -> int:
        with self._lock:
            return sum(self._per_address.values())

    def admit(self, address: str) -> Refusal | None:
        """Take a slot for a connection from `address` (None), or say why there is none."""
        with self._lock:
            if sum(self._per_address.values()) >= self.limits.max_connections:
                return Refusal(
                    f"the server already holds its maximum of {self.limits.max_connections} connections",
                    server_wide=True,
                )
            if self._per_address[address] >= self.limits.max_per_address:
                return Refusal(
                    f"this address already holds its maximum of {self.limits.max_per_address} connections",
                    server_wide=False,
                )
            self._per_address[address] += 1
            return None

    def release(self, address: str) -> None:
        with self._lock:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]


@dataclass
class _Reported:
    at: float
    unreported: int = 0


class ThrottledLog:
    """Logs an event at most once per key per interval, saying how many were not logged since.

    The keys remembered are bounded (`max_keys`): past that, new keys share one report, so a
    flood from many addresses cannot grow the server's memory either.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = REPORT_INTERVAL_S, max_keys: int = 1024):
        self.logger, self.interval_s, self.max_keys = logger, interval_s, max_keys
        self._lock = threading.Lock()
        self._reported: dict[object, _Reported] = {}

    def warn(self, key: object, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if key not in self._reported and len(self._reported) >= self.max_keys:
                self._forget_older_than(now - self.interval_s)
                if len(self._reported) >= self.max_keys:
                    key, message = "others", "more events from other addresses: " + message
            last = self._reported.get(key)
            if last is not None and now - last.at < self.interval_s:
                last.unreported += 1
                return
            unreported = last.unreported if last is not None else 0
            self._reported[key] = _Reported(now)
        since = f" ({unreported} more since the last report)" if unreported else ""
        self.logger.warning("%s%s", message, since)

    def _forget_older_than(self, cutoff: float) -> None:
        for key in [k for k, r in self._reported.items() if r.at < cutoff]:
            del self._reported[key]
