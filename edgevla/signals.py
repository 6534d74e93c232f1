"""How long-running commands (run, serve, record, teleop) stop: Ctrl-C and SIGTERM alike."""

from __future__ import annotations

import signal


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM (a service stop, `kill`) raise KeyboardInterrupt in the main thread,
    so the command's `finally` blocks run: saved episodes stay durable and arms stop as their
    definition says. Set explicitly: a SIGINT ignored by whatever started us (a launcher, a CI
    runner, a test harness) is inherited, and Python then installs no Ctrl-C handler of its own."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
