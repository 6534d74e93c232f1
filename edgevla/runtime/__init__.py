"""Robot-side inference: torch-free policies, the asynchronous control loop and its wire protocol.

Nothing in this package may import torch, transformers or lerobot, nor edgevla.model, export,
train or hosting, not even inside a function (docs/ARCHITECTURE.md; tests/test_architecture.py).
"""
