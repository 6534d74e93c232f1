"""The one fixed-rate clock of recording, teleoperation, the control loop and the simulator."""

import threading
import time

from edgevla.clock import Ticker


def test_ticker_skips_missed_slots_instead_of_bursting():
    ticker = Ticker(fps=10)
    first = ticker.wait()
    assert (first.slot, first.dropped) == (0, 0)
    time.sleep(0.25)  # the loop body overran 2.5 periods
    late = ticker.wait()
    assert late.dropped >= 1 and late.slot == 1 + late.dropped
    assert 0 <= late.lateness < ticker.period  # re-locked to the clock, not a backlog to catch up
    following = ticker.wait()
    assert following.slot == late.slot + 1 and following.dropped == 0


def test_spinning_ticker_never_starts_a_slot_early():
    ticker = Ticker(fps=200, spin_s=0.002)
    ticks = [ticker.wait() for _ in range(40)]
    assert all(tick.started >= tick.due for tick in ticks)
    assert [t.slot for t in ticks] == sorted({t.slot for t in ticks})  # in order, none twice


def test_stop_event_cuts_a_wait_short():
    stop = threading.Event()
    ticker = Ticker(fps=0.5, stop=stop)  # a slot every 2 s
    ticker.wait()
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()
    ticker.wait()
    assert time.monotonic() - began < 1.0
