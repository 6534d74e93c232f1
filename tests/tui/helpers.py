"""Shared by the TUI tests."""

import asyncio

from edgevla.drivers.bus import BusConfig

# One more retry than the driver's default; the status timeout comes from tests/conftest.py.
PATIENT = BusConfig(retries=4)


async def wait_for(pilot, condition, timeout: float = 20.0, describe=lambda: "") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds with `describe()`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}: {describe()}")
        await pilot.pause(0.05)


def write_correction_round(root):
    """A correction round as `edgevla rollout` writes it (its schema, no camera), small and fixed:
    attempt 0 a success with one takeover (4 policy, 2 handover, 4 person frames), attempt 1 a
    failure the policy ran alone (6 frames)."""
    import numpy as np

    from edgevla.corrections.rollout import rollout_features
    from edgevla.dataset import DatasetWriter
    from edgevla.dataset.corrections import (
        CORRECTED_COLUMN,
        EPISODE_COLUMNS,
        INTERVENTION_KEY,
        INTERVENTIONS_COLUMN,
        PHASE_KEY,
        POLICY_ACTION_KEY,
        SUCCESS_COLUMN,
    )
    from edgevla.policy_io import ACTION_KEY, STATE_KEY
    from edgevla.train.synthetic import JOINTS

    writer = DatasetWriter.open(
        root, 30, rollout_features(JOINTS, ()), "so101_follower", episode_metadata=EPISODE_COLUMNS
    )
    for phases, label, interventions in (([0] * 4 + [1] * 2 + [2] * 4, 1, 1), ([0] * 6, 0, 0)):
        for tick, phase in enumerate(phases):
            pose = np.full(6, tick, dtype=np.float32)
            frame = {
                STATE_KEY: pose,
                ACTION_KEY: pose + 1,
                POLICY_ACTION_KEY: pose + 1,
                INTERVENTION_KEY: np.float32(phase != 0),
                PHASE_KEY: np.int64(phase),
                "timing.tick": tick / 30,
            }
            writer.add_frame(frame, "touch the red cube")
        writer.save_episode(
            {SUCCESS_COLUMN: label, INTERVENTIONS_COLUMN: interventions, CORRECTED_COLUMN: phases.count(2)}
        )
    writer.close()
    return root
