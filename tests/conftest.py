"""Test-wide settings: nothing may reach the Hugging Face hub; buses wait longer for a status.

The virtual servo firmware answers from a Python thread or process. On a loaded CI machine it
is sometimes tens of milliseconds late, which the driver's 20 ms default status timeout (meant
for real servos, which answer in under 1 ms) takes for a dead servo. Every bus opened by a test,
and by the edgevla processes tests start (they inherit the environment), waits 150 ms instead."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["EDGEVLA_BUS_TIMEOUT_MS"] = "150"
