"""Recipes train on a correction round: corrected frames weighted (DAgger), each frame's task told
whether its action was good (advantage conditioning); the policy exports and runs torch-free,
asking for "positive" by itself."""

from pathlib import Path

import numpy as np
import pytest

from edgevla.corrections.sim import SimRolloutConfig, sim_rollout
from edgevla.dataset import DatasetReader
from edgevla.dataset.corrections import HANDOVER, PERSON, PHASE_KEY, POLICY
from edgevla.train.corrections import NEGATIVE, POSITIVE, frame_repeats, good_frames
from edgevla.train.recipe import Corrections, load_recipe

from .test_sim_rollout import Stalls

ROOT = Path(__file__).resolve().parents[2]
SMALL_CPU = ROOT / "recipes" / "small-cpu.yaml"
TINY = {
    "base": "preset:tiny",
    "model": {"chunk_size": 10, "resize": 32, "tokenizer_max_length": 32},
    "batch_size": 4,
    "cpu_threads": 1,
    "num_workers": 0,
    "eval.episodes": 0,
    "optim.warmup_steps": 1,
    "optim.decay_steps": 10,
}


@pytest.fixture(scope="module")
def corrections(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("round") / "ds"
    config = SimRolloutConfig(episodes=1, episode_seconds=20, size=32, codec="libx264")
    sim_rollout(Stalls(), config, root, log=lambda _line: None)
    return root


def test_weights_and_indicators_follow_the_flags_and_the_label(corrections):
    reader = DatasetReader(corrections)
    phases = reader.columns[PHASE_KEY].astype(int)
    spec = Corrections(intervention_weight=3, bad_before_s=0.5)
    repeats = frame_repeats(reader, spec)
    assert set(repeats[phases == PERSON]) == {3} and set(repeats[phases == HANDOVER]) == {0}
    assert set(repeats[phases == POLICY]) == {1}
    alone = frame_repeats(reader, Corrections(intervention_weight=2, policy_weight=0))
    assert set(alone[phases == POLICY]) == {0} and set(alone[phases == PERSON]) == {2}  # HG-DAgger
    good = good_frames(reader, spec)
    assert good[phases == PERSON].all()
    takeover = int(np.flatnonzero(phases != POLICY)[0])
    assert not good[takeover - 15 : takeover].any()  # what made the person step in
    assert good[: takeover - 15].all()  # the policy's other frames in a successful attempt


def test_an_indicator_that_would_be_cut_is_refused(corrections, tmp_path):
    from edgevla.errors import EdgevlaError
    from edgevla.train.loop import Run, make_accelerator

    overrides = {**TINY, "model": {"chunk_size": 10, "resize": 32, "tokenizer_max_length": 8}}
    recipe = load_recipe(
        SMALL_CPU, {**overrides, "datasets": [str(corrections)], "corrections.advantage": True}
    )
    with pytest.raises(EdgevlaError, match="indicator would be cut"):
        Run(recipe, str(SMALL_CPU), False, make_accelerator(recipe))


def test_a_corrections_section_on_plain_demos_only_is_refused(tmp_path):
    from edgevla.errors import EdgevlaError
    from edgevla.train.loop import Run, make_accelerator
    from edgevla.train.synthetic import write_reaching_dataset

    plain = write_reaching_dataset(tmp_path / "plain", episodes=2, length=12)
    for section in ({"corrections.advantage": True}, {"corrections.intervention_weight": 3}):
        recipe = load_recipe(SMALL_CPU, {**TINY, "datasets": [str(plain)], **section})
        with pytest.raises(EdgevlaError, match="no dataset is a correction round"):
            Run(recipe, str(SMALL_CPU), False, make_accelerator(recipe))


@pytest.mark.filterwarnings("error:instruction is")
def test_advantage_recipe_trains_exports_and_runs_asking_for_positive(corrections, tmp_path):
    from edgevla.export.onnx_graphs import export_onnx
    from edgevla.hosting import open_policy
    from edgevla.model.checkpoint import load_policy
    from edgevla.train.loop import Run, make_accelerator, train

    overrides = {
        **TINY,
        "datasets": [str(corrections)],
        "out": str(tmp_path / "run"),
        "corrections": {"intervention_weight": 3, "advantage": True},
    }
    recipe = load_recipe(SMALL_CPU, overrides)
    run = Run(recipe, str(SMALL_CPU), False, make_accelerator(recipe))
    reader = run.readers[0]
    assert len(run.train_set) == int(frame_repeats(reader, recipe.corrections).sum())
    tasks = {run.train_set[i]["tokens"].tobytes() for i in range(0, len(run.train_set), 7)}
    assert len(tasks) == 2  # one instruction, told "positive" or "negative"

    train(recipe, str(SMALL_CPU), tmp_path / "run", max_steps=2)
    policy = load_policy(tmp_path / "run" / "policy")
    assert policy.cfg.task_suffix == POSITIVE
    art = export_onnx(policy, tmp_path / "art", log=lambda _: None)
    onnx = open_policy(art)
    assert onnx.spec.extra["task_suffix"] == POSITIVE
    task = "touch the red cube"
    asked, _ = onnx.pre.tokenizer(task + POSITIVE)
    assert np.array_equal(onnx.pre({**_observation(reader), "task": task}).tokens, asked)
    assert not np.array_equal(asked, onnx.pre.tokenizer(task + NEGATIVE)[0])
    chunk = onnx.infer({**_observation(reader), "task": task})
    assert chunk.shape == (10, 6) and np.isfinite(chunk).all()


def _observation(reader: DatasetReader) -> dict:
    item = reader[0]
    return {
        "observation.images.front": item["observation.images.front"],
        "observation.state": item["observation.state"],
    }
