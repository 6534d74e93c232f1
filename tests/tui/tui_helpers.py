"""Shared by the TUI tests."""

from edgevla.drivers.bus import BusConfig

# The firmware answers from a thread of the test process; a loaded 2-core box is sometimes late.
PATIENT = BusConfig(retries=4, timeout_ms=60)
