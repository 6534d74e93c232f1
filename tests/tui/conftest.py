"""Fixtures for the TUI tests: virtual arms on real ptys, a patient bus on this busy box."""

from __future__ import annotations

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs


@pytest.fixture(autouse=True)
def patient_sdks(monkeypatch):
    monkeypatch.setattr(scs.port_handler, "LATENCY_TIMER", 50)
    monkeypatch.setattr(dxl.port_handler, "LATENCY_TIMER", 50)


@pytest.fixture(autouse=True)
def calibration_dir(tmp_path, monkeypatch):
    """Profiles go to a temporary folder, never to the checkout's calibration/."""
    folder = tmp_path / "calibration"
    monkeypatch.setenv("EDGEVLA_CALIBRATION_DIR", str(folder))
    return folder
