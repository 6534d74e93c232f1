"""The evaluation harness above the runtime: a policy put through episodes of the simulated world
(`edgevla.sim`), with the async runtime (`evaluate`) or clockless (`rollout`), and the oracle
policy that reads the simulator. See docs/SIM.md.
"""
