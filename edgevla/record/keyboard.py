"""Episode controls from the terminal with no GUI library: raw tty keys read in a thread.

right arrow / n : end this episode (save it) or end the reset period
left arrow  / r : re-record: drop this episode and record it again
esc / q         : stop recording (the current episode is saved)
"""

from __future__ import annotations

import os
import queue
import select
import sys
import threading

NEXT, RERECORD, STOP = "next", "rerecord", "stop"
INTERRUPT = "interrupt"  # Ctrl-C or SIGTERM (not a key here): stop and drop the unfinished episode
_KEYS = {b"\x1b[C": NEXT, b"n": NEXT, b"\x1b[D": RERECORD, b"r": RERECORD, b"\x1b": STOP, b"q": STOP}
HELP = "keys: -> or n = next episode, <- or r = re-record, esc or q = stop"


class KeyboardControls:
    """Puts NEXT / RERECORD / STOP (or the events of `keys`, raw bytes -> event) in a queue as
    keys are pressed; a no-op without a tty."""

    def __init__(self, enabled: bool = True, stream=None, keys: dict[bytes, str] | None = None):
        self.keys = _KEYS if keys is None else keys
        self.stream = stream or sys.stdin
        self.enabled = enabled and self.stream.isatty()
        self._events: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._saved_mode = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> KeyboardControls:
        if self.enabled:
            import termios
            import tty

            fd = self.stream.fileno()
            self._saved_mode = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # keys arrive one by one, unechoed; Ctrl-C still interrupts
            self._thread = threading.Thread(target=self._read, args=(fd,), name="keyboard", daemon=True)
            self._thread.start()
        return self

    def _read(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                event = self.keys.get(os.read(fd, 8))
                if event:
                    self._events.put(event)

    def poll(self) -> str | None:
        try:
            return self._events.get_nowait()
        except queue.Empty:
            return None

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._saved_mode is not None:
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved_mode)
