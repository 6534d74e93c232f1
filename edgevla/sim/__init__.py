"""A simulated SO-101 arm: kinematics, a table with coloured cubes, cameras, tasks, a scripted expert.

Torch-free (numpy only). See docs/SIM.md.
"""
