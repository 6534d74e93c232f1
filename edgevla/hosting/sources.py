"""One call that opens any policy directory: an exported artifact (torch-free) or a checkpoint.

    policy = open_policy(path)        # ART -> OnnxPolicy; edgevla/lerobot checkpoint -> TorchPolicy

Only a checkpoint imports torch (lazily), so the robot side can open artifacts without it.
"""

from __future__ import annotations

from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.runtime.artifact import is_artifact
from edgevla.runtime.policy import Policy

BNB_FILE = "bnb_quantization.json"


def open_policy(
    path: str | Path,
    device: str = "cpu",
    dtype: str = "fp32",
    vlm_dir: str | Path | None = None,
    providers: list[str] | None = None,
    threads: int = 0,
) -> Policy:
    """ART (manifest.json) -> OnnxPolicy on `providers` (default: best available, cuda when
    device is cuda); a checkpoint (edgevla_policy.json or lerobot config.json) -> TorchPolicy on
    `device`/`dtype`, with bitsandbytes layers when it was written by `edgevla quantize --method bnb-*`."""
    path = Path(path)
    if not path.is_dir():
        raise EdgevlaError(f"policy directory {path} does not exist")
    if is_artifact(path):
        from edgevla.runtime.onnx_policy import OnnxPolicy

        if providers is None and device.startswith("cuda"):
            providers = ["cuda"]
        elif providers is None:
            providers = ["cpu"]
        return OnnxPolicy(path, providers=providers, threads=threads)
    from edgevla.model.checkpoint import load_policy

    if (path / BNB_FILE).is_file():
        from edgevla.export.bnb import load_bnb_policy

        return load_bnb_policy(path, device=device)
    return load_policy(path, device=device, dtype=dtype, vlm_dir=vlm_dir)
