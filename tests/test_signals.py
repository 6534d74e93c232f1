"""Ctrl-C and SIGTERM: raised where the main thread is, or noted for a loop that polls."""

from __future__ import annotations

import os
import signal

import pytest

from edgevla.signals import stop_on_signals


@pytest.fixture
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_signal_outside_a_deferring_loop_interrupts_at_once(restore_handlers):
    stop_on_signals()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # not reached: the handler runs at the kill


def test_a_deferring_loop_polls_the_first_signal_and_a_second_one_interrupts(restore_handlers):
    interrupts = stop_on_signals()
    ticks = 0
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        while not interrupts.stop_requested:
            ticks += 1
            if ticks == 3:
                os.kill(os.getpid(), signal.SIGINT)  # noted, the loop runs to its next poll
        assert interrupts.received == signal.SIGINT and ticks == 3
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # a loop that stopped polling is still stoppable
    # after the loop, the command ends as interrupted (raised on leaving deferred())


def test_a_deferring_loop_can_treat_the_signal_as_its_normal_end(restore_handlers):
    interrupts = stop_on_signals()
    with interrupts.deferred(reraise=False):
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.stop_requested
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)  # no longer deferring
