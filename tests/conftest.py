"""Test-wide settings: nothing may reach the Hugging Face hub; buses wait longer for a status.

The virtual servo firmware answers from a Python thread or process. On a loaded CI machine it
is sometimes tens of milliseconds late, which the driver's 20 ms default status timeout (meant
for real servos, which answer in under 1 ms) takes for a dead servo. Every bus opened by a test,
and by the edgevla processes tests start (they inherit the environment), waits 150 ms instead."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["EDGEVLA_BUS_TIMEOUT_MS"] = "150"


@pytest.fixture(autouse=True, scope="session")
def user_calibration_folder(tmp_path_factory):
    """lerobot's calibration folder, where `edgevla calibrate` saves and `Robot` looks first: a
    fresh one, so a developer's own arm profiles never reach the tests, nor the tests' theirs."""
    folder = tmp_path_factory.mktemp("lerobot-calibration")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_LEROBOT_CALIBRATION", str(folder))
        yield folder
