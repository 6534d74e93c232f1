"""Robot-side inference: torch-free policies, the asynchronous control loop and its wire protocol.

Nothing in this package may import torch, transformers or lerobot (tests enforce it).
"""
