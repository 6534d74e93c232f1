"""Fixtures for runtime tests: a real tiny SmolVLA-class checkpoint, written once per session."""

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from edgevla.model.checkpoint import build_preset, save_policy

    return save_policy(build_preset("tiny", seed=0), tmp_path_factory.mktemp("tiny") / "tiny")


@pytest.fixture
def synthetic_front():
    from edgevla.cameras import open_cameras, parse_camera_spec

    (reader,) = open_cameras([parse_camera_spec("front=synthetic?width=160&height=120")])
    reader.wait_frame()
    yield reader
    reader.stop()
