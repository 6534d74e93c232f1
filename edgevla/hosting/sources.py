"""What a policy source on this machine is, and opening it in this process.

    policy.npz              a replay (ReplayPolicy, torch-free)
    DIR/manifest.json       an exported artifact (OnnxPolicy, torch-free)
    DIR/bnb_quantization.json + edgevla_policy.json
                            a checkpoint written by `edgevla quantize --method bnb-*` (torch)
    DIR/edgevla_policy.json an edgevla checkpoint (TorchPolicy, torch)
    DIR/config.json         a lerobot SmolVLA checkpoint (TorchPolicy, torch)

torch is imported only on the checkpoint branches, so a robot without it opens replays and
artifacts.
"""

from __future__ import annotations

from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.policy_io import Policy
from edgevla.runtime.artifact import is_artifact


def is_remote(source: str) -> bool:
    """A server address (`edgevla serve`) rather than a file on this machine."""
    return source.startswith(("ws://", "wss://"))


def local_path(source: str | Path) -> Path:
    """`source` as a local policy's path; one line when nothing usable is there (said before a
    worker process starts, so no other message wraps it)."""
    path = Path(source)
    if (path.suffix == ".npz" and path.is_file()) or path.is_dir():
        return path
    kinds = "a replay .npz, an exported artifact or a checkpoint directory"
    problem = "is not" if path.exists() else "does not exist: give"
    raise EdgevlaError(f"policy '{source}' {problem} {kinds}")


def policy_bytes(source: str | Path) -> int | None:
    """Bytes of a local policy's weights (an artifact's graphs, a checkpoint's safetensors), which
    sets its default thread count (runtime.workers.worker_threads); None for other sources."""
    path = Path(source)
    if is_artifact(path):
        files = [*path.glob("*.onnx"), *path.glob("*.onnx.data")]
    elif path.is_dir():
        files = list(path.glob("*.safetensors"))
    else:
        return None
    return sum(f.stat().st_size for f in files) or None


def open_local(
    source: str | Path,
    *,
    device: str = "cpu",
    dtype: str = "fp32",
    vlm_dir: str | Path | None = None,
    providers: list[str] | None = None,
    threads: int = 0,
    num_steps: int | None = None,
) -> Policy:
    """The policy at `source`, loaded in this process.

    An artifact runs on `providers` (default: cuda when `device` is cuda, else cpu) with
    `threads` ONNX Runtime intra-op threads (0: its default, one per core); a checkpoint runs in
    torch on `device`/`dtype` (`vlm_dir`: a lerobot checkpoint's VLM config and tokenizer).
    `num_steps`: sampling steps of a flow or diffusion head (1..10; None: the policy's own).
    """
    path = local_path(source)
    if path.suffix == ".npz":
        from edgevla.runtime.replay import ReplayPolicy

        if num_steps is not None:
            raise EdgevlaError("--steps: a replay has no sampler; drop --steps")
        return ReplayPolicy.load(path)
    if is_artifact(path):
        from edgevla.runtime.onnx_policy import OnnxPolicy

        if providers is None:
            providers = ["cuda"] if device.startswith("cuda") else ["cpu"]
        return OnnxPolicy(path, providers=providers, threads=threads, num_steps=num_steps)
    from edgevla.export.bnb import BNB_FILE, load_bnb_policy
    from edgevla.model.checkpoint import load_policy
    from edgevla.model.policy import check_steps

    if (path / BNB_FILE).is_file():
        policy = load_bnb_policy(path, device=device)
    else:
        policy = load_policy(path, device=device, dtype=dtype, vlm_dir=vlm_dir)
    policy.num_steps = check_steps(policy.net.head, num_steps)
    return policy
