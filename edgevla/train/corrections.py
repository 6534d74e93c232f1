"""Training on correction rounds: DAgger-style aggregation and RECAP-style advantage conditioning.

Aggregation: every frame of every attempt trains, the frames a person corrected are drawn
`intervention_weight` times as often, the policy's own frames `policy_weight` times (0: the
corrections alone, as HG-DAgger trains), and the handover frames (the follower held still while
the leader was driven to it: nobody's action) are left out.

Advantage conditioning without a critic (as pi*0.6 conditions, by text): each frame gets a binary
indicator, told to the model as text after the task: "Advantage: positive" for the person's
corrections and for the policy's own frames in an attempt labelled a success, except those in the
`bad_before_s` before a takeover (what made the person step in); "negative" for the rest. The
policy it trains asks for "positive" at run time: the exported config carries that suffix
(`task_suffix`), which every backend's preprocessor appends, so heads and export stay unchanged.
"""

from __future__ import annotations

import numpy as np

from edgevla.dataset import DatasetReader
from edgevla.dataset.corrections import HANDOVER, PERSON, PHASE_KEY, POLICY, SUCCESS_COLUMN, is_corrections
from edgevla.errors import EdgevlaError
from edgevla.printable import printable
from edgevla.train.recipe import Corrections

POSITIVE = "\nAdvantage: positive"
NEGATIVE = "\nAdvantage: negative"


def frame_phases(reader: DatasetReader) -> np.ndarray | None:
    """Per frame 0 policy / 1 handover / 2 person, or None for a dataset of plain demonstrations."""
    if not is_corrections(reader.features):
        return None
    return reader.columns[PHASE_KEY].reshape(-1).astype(np.int64)


def good_frames(reader: DatasetReader, spec: Corrections) -> np.ndarray:
    """Per frame: whether its action is "positive" (see the module docstring)."""
    phases = frame_phases(reader)
    if phases is None:
        return np.ones(len(reader), dtype=bool)  # demonstrations
    good = phases == PERSON
    window = round(spec.bad_before_s * reader.fps)
    for episode in reader.episodes:
        span = slice(episode.from_index, episode.to_index)
        ok = phases[span] == POLICY
        if episode.extra.get(SUCCESS_COLUMN, -1) != 1:
            ok[:] = False
        starts = np.flatnonzero(np.diff(np.concatenate([[POLICY], phases[span]])) != 0)
        for start in starts:
            if phases[span][start] != POLICY:  # a takeover: the policy's frames just before were bad
                ok[max(0, start - window) : start] = False
        good[span] |= ok
    return good


def frame_repeats(reader: DatasetReader, spec: Corrections) -> np.ndarray:
    """How many times each frame is drawn: 0 for handover frames, `intervention_weight` for the
    person's corrections, `policy_weight` for the policy's own, 1 for every frame of a plain
    dataset."""
    phases = frame_phases(reader)
    if phases is None:
        return np.ones(len(reader), dtype=np.int64)
    repeats = np.full(len(reader), spec.policy_weight, dtype=np.int64)
    repeats[phases == PERSON] = spec.intervention_weight
    repeats[phases == HANDOVER] = 0
    return repeats


def check_rounds_present(readers: list[DatasetReader], spec: Corrections, source: str) -> None:
    """A `corrections:` section with no correction round among the datasets would train exactly
    as without it: say so instead of training a policy the user did not ask for."""
    asked = spec.advantage or spec.intervention_weight != 1 or spec.policy_weight != 1
    if asked and not any(is_corrections(reader.features) for reader in readers):
        raise EdgevlaError(
            f"{source}: corrections: is set but no dataset is a correction round (recorded by `edgevla rollout` "
            "or `edgevla sim rollout`): add one with --dataset, or remove the corrections: section"
        )


def check_indicator_fits(readers: list[DatasetReader], tokenizer, source: str) -> None:
    """Refuse tasks whose indicator would be cut off: the model would never see it."""
    for reader in readers:
        for task in reader.tasks:
            count = tokenizer.count(task + NEGATIVE)
            if count > tokenizer.max_length:
                raise EdgevlaError(
                    f"{source}: corrections.advantage: the task '{printable(task)}' with its indicator is "
                    f"{count} tokens and the model reads {tokenizer.max_length}, so the indicator would be "
                    "cut: shorten the task, or on a preset base raise model.tokenizer_max_length"
                )
