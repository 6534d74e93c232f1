"""How long-running commands (run, serve, record, teleop) stop: Ctrl-C and SIGTERM alike."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Interrupts:
    """SIGINT and SIGTERM (a service stop, `kill`) handled in the main thread.

    Outside `deferred()` a signal raises KeyboardInterrupt where the main thread is, so the
    command's `finally` blocks run. Inside it the signal is only noted, and the loop polls
    `received` between ticks: an exception raised in the middle of a serial transaction leaves the
    servo SDK's port marked busy (the torque-off that follows then fails), and one raised while a
    queue's lock is held can hang the encoder threads that a clean stop waits for. A second signal
    raises at once, for a loop that stopped polling.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = False

    def install(self) -> Interrupts:
        # Set explicitly: a SIGINT ignored by whatever started us (a launcher, a CI runner, a test
        # harness) is inherited, and Python then installs no Ctrl-C handler of its own.
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self._deferring and self.received is None:
            self.received = signum
            return
        raise KeyboardInterrupt

    @property
    def stop_requested(self) -> bool:
        return self.received is not None

    @contextmanager
    def deferred(self, reraise: bool = True) -> Iterator[Interrupts]:
        """Note signals for the loop inside to poll; after it, raise KeyboardInterrupt if one came
        (`reraise`), so the command ends as interrupted once its loop stopped cleanly."""
        self._deferring = True
        try:
            yield self
        finally:
            self._deferring = False
        if reraise and self.received is not None:
            raise KeyboardInterrupt


def stop_on_signals() -> Interrupts:
    return Interrupts().install()
