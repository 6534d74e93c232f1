"""A simulated SO-101 arm: kinematics, a table with coloured cubes, cameras, tasks, a scripted
expert, the virtual servos it sits behind and the clock that runs it in real time. Policies are
put through its episodes by the evaluation harness above the runtime (`edgevla.evaluation`).

Torch-free (numpy only). See docs/SIM.md.
"""
