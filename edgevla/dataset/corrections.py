"""The columns a correction round (`edgevla.corrections`) writes, and the summary of them that
`edgevla dataset info` prints and the TUI's recipes screen shows (`read_corrections_summary`,
`describe_corrections`: one procedure for both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

INTERVENTION_KEY = "complementary_info.is_intervention"  # lerobot's HIL-SERL / gym_manipulator name
POLICY_ACTION_KEY = "complementary_info.policy_action"  # what the policy's runtime wanted to send
PHASE_KEY = "corrections.phase"  # 0 policy, 1 handover (the follower holds), 2 the person moves it
POLICY, HANDOVER, PERSON = 0, 1, 2
SUCCESS_COLUMN = "corrections/success"  # per episode: 1 success, 0 failure, -1 not labelled
INTERVENTIONS_COLUMN = "corrections/interventions"
CORRECTED_COLUMN = "corrections/intervention_frames"  # frames the person moved the arm
EPISODE_COLUMNS = {SUCCESS_COLUMN: "int64", INTERVENTIONS_COLUMN: "int64", CORRECTED_COLUMN: "int64"}


def is_corrections(features: dict[str, dict]) -> bool:
    return INTERVENTION_KEY in features and PHASE_KEY in features


def corrections_summary(root: Path, features: dict[str, dict], episodes: list) -> dict[str, Any] | None:
    """Autonomous vs corrected frames and attempt outcomes of a correction-round dataset (None
    for any other dataset)."""
    if not is_corrections(features):
        return None
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    phases = np.concatenate(
        [pq.read_table(f, columns=[PHASE_KEY]).column(0).to_numpy() for f in files] or [[]]
    )
    labels = [e.extra.get(SUCCESS_COLUMN, -1) for e in episodes]
    interventions = [e.extra.get(INTERVENTIONS_COLUMN, 0) for e in episodes]
    return {
        "attempts": len(episodes),
        "succeeded": labels.count(1),
        "failed": labels.count(0),
        "unlabelled": labels.count(-1),
        "interventions": int(sum(interventions)),
        "interventions_per_attempt": round(sum(interventions) / len(episodes), 3) if episodes else 0.0,
        "attempts_corrected": sum(n > 0 for n in interventions),
        "autonomous_frames": int((phases == POLICY).sum()),
        "handover_frames": int((phases == HANDOVER).sum()),
        "corrected_frames": int((phases == PERSON).sum()),
    }


def read_corrections_summary(root: Path) -> dict[str, Any] | None:
    """`corrections_summary` of the dataset at `root`, read from its metadata (None for a dataset of
    plain demonstrations; a DatasetFormatError, one line, for a folder that is not a dataset)."""
    from edgevla.dataset.meta import load_episodes, load_info

    features = load_info(root)["features"]
    if not is_corrections(features):
        return None
    return corrections_summary(root, features, load_episodes(root, features))


def describe_corrections(c: dict[str, Any]) -> list[str]:
    """The summary in words: outcomes and interventions, then autonomous vs corrected frames."""
    return [
        f"corrections: {c['attempts']} attempts ({c['succeeded']} succeeded, {c['failed']} failed, "
        f"{c['unlabelled']} unlabelled); {c['interventions']} interventions "
        f"({c['interventions_per_attempt']:g} per attempt, {c['attempts_corrected']} attempts corrected)",
        f"frames: {c['autonomous_frames']} autonomous, {c['corrected_frames']} corrected, "
        f"{c['handover_frames']} handing over",
    ]
