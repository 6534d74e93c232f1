"""The instruction a run gives its policy, checked once before the first tick.

Every transport must treat a task the same way: over the wire a task longer than
MAX_TASK_CHARS is refused (a worker process refused every request and was respawned forever),
while an in-process policy cut it to its tokenizer's width with a warning on every start. Both
limits are checked here instead, once, with one message, whatever the transport.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.policy_io import PolicySpec
from edgevla.runtime.wire import MAX_TASK_CHARS

TOKENIZER_FILE = "tokenizer.json"  # in an exported artifact and an edgevla checkpoint


def check_task(task: str, spec: PolicySpec, source: str) -> None:
    """Raise one line if `task` is longer than the protocol carries or than `spec` reads.

    Tokens are counted with the tokenizer of a local policy directory (`source`); a remote
    server's tokenizer is out of reach, and that server cuts and logs an over-long task itself."""
    if len(task) > MAX_TASK_CHARS:
        raise EdgevlaError(
            f"--task is {len(task)} characters; a policy takes at most {MAX_TASK_CHARS}: shorten it"
        )
    tokenizer = Path(source) / TOKENIZER_FILE  # a server address (ws://...) names no local folder
    if not spec.max_tokens or not tokenizer.is_file():
        return
    if importlib.util.find_spec("tokenizers") is None:
        return  # the worker that runs the policy has it and cuts with a warning
    from edgevla.runtime.preprocess import TaskTokenizer

    count = TaskTokenizer(tokenizer, spec.max_tokens).count(task + spec.extra.get("task_suffix", ""))
    if count > spec.max_tokens:
        raise EdgevlaError(
            f"--task is {count} tokens; policy '{spec.name}' reads at most {spec.max_tokens} "
            "(the rest would be cut): shorten it"
        )
