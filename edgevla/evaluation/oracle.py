"""A policy that cheats: it reads the episode's scene from the simulator and plans with the
scripted expert. It checks the closed loop itself (units, clamps, chunk timing, cameras) and
gives the success rate that a perfect policy reaches through the async runtime."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgevla.policy_io import STATE_KEY, Guidance, Observation, Policy, PolicySpec
from edgevla.sim.expert import ExpertConfig, ScriptedExpert
from edgevla.sim.world import SimWorld


class OraclePolicy(Policy):
    def __init__(self, world: SimWorld, chunk_size: int = 30):
        self.world = world
        dim = len(world.kin.joints)
        self.spec = PolicySpec(
            name="oracle",
            cameras=(),
            state_dim=dim,
            action_dim=dim,
            chunk_size=chunk_size,
            num_steps=0,
            max_action_dim=dim,
            max_tokens=0,
            fps=world.config.fps,
        )
        self._config = ExpertConfig(reaction_s=(0.0, 0.0), tremor=0.0)

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        angles = self.world.from_normalized(obs[STATE_KEY])
        episode = dataclasses.replace(self.world.episode, start=angles)
        expert = ScriptedExpert(self.world.kin, episode, self._config)
        times = np.arange(self.spec.chunk_size) / self.spec.fps
        return np.stack([self.world.to_normalized(expert.goal(t)) for t in times]).astype(np.float32)
