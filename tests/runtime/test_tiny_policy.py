"""The async runtime with the real tiny SmolVLA-class policy (torch) and a synthetic camera."""

import numpy as np

from edgevla.hosting import open_policy
from edgevla.policy_io import Expectation, Guidance
from edgevla.runtime.server import PolicyServer

EXPECT = Expectation(state_dim=6, action_dim=6, cameras=("front",), fps=30.0)


def _obs(camera) -> dict:
    return {
        "observation.state": np.linspace(-10, 10, 6, dtype=np.float32),
        "observation.images.front": camera.latest().image,
        "task": "pick the cube",
        "timestamp": 0.0,
    }


def test_tiny_policy_served_remotely_with_jpeg_images_and_rtc_guidance(tiny_checkpoint, synthetic_front):
    local = open_policy(tiny_checkpoint)
    server = PolicyServer(local, port=0, token="k").start()
    try:
        remote = open_policy(server.url, transport="remote", expect=EXPECT, token="k", jpeg=True)
        assert remote.spec == local.spec  # the handshake carried the whole spec
        obs = _obs(synthetic_front)
        noise = np.random.default_rng(0).standard_normal((10, local.spec.max_action_dim)).astype(np.float32)
        chunk = remote.infer(obs, noise=noise)
        assert chunk.shape == (10, 6) and np.isfinite(chunk).all()
        # same noise, raw images locally vs JPEG remotely: close, not equal (JPEG is lossy)
        np.testing.assert_allclose(chunk, local.infer(obs, noise=noise), atol=0.5)
        target = np.full((10, 6), 3.0, np.float32)
        weights = np.array([1, 1, 1, 0.5, 0.2, 0, 0, 0, 0, 0], np.float32)
        guided = remote.infer(obs, noise=noise, guidance=Guidance(target, weights))
        # the frozen rows follow the previous plan much more closely than the free ones do
        assert np.abs(guided[:3] - target[:3]).mean() < np.abs(chunk[:3] - target[:3]).mean()
        remote.close()
    finally:
        server.close()
