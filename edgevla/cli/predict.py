"""`edgevla predict`: one action chunk from an observation file (the parity-check contract).

OBS.npz holds observation.state float32 (D,), observation.images.<camera> uint8 HxWx3 and
task (0-d string); NOISE.npy is (chunk_size, max_action_dim) float32; the output ACTIONS.npy
is (chunk_size, action_dim) float32 in the robot's units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgevla.cli.args import add_steps
from edgevla.errors import EdgevlaError
from edgevla.runtime.npz import read_npz


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", required=True, help="edgevla or lerobot SmolVLA checkpoint, or an exported artifact (ART)"
    )
    parser.add_argument("--obs", required=True, help="observation .npz")
    parser.add_argument("--noise", help="initial noise .npy (chunk_size, max_action_dim); default N(0,1)")
    parser.add_argument("--out", required=True, help="where to write the actions .npy")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="bf16/fp16 on GPU")
    parser.add_argument("--vlm-dir", help="local SmolVLM config+tokenizer dir (lerobot checkpoints)")
    parser.add_argument(
        "--providers", help="artifacts: ONNX Runtime providers cpu, cuda, tensorrt (comma-separated)"
    )
    add_steps(parser)
    parser.set_defaults(handler=run)


def read_observation(path: str) -> dict:
    """Arrays of an .npz without pickle (object arrays are refused)."""
    if not Path(path).is_file():
        raise EdgevlaError(f"observation file {path} does not exist")
    return read_npz(path)


def read_npy(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise EdgevlaError(f"noise file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise EdgevlaError(f"{path} is not a readable .npy array ({err})") from err


def run(args: argparse.Namespace) -> int:
    from edgevla.hosting import open_policy

    obs = read_observation(args.obs)
    noise = read_npy(args.noise) if args.noise else None
    providers = args.providers.split(",") if args.providers else None
    policy = open_policy(
        args.policy,
        device=args.device,
        dtype=args.dtype,
        vlm_dir=args.vlm_dir,
        providers=providers,
        num_steps=args.steps,
    )
    actions = policy.infer(obs, noise=noise)
    np.save(args.out, actions)
    print(f"wrote {actions.shape[0]}x{actions.shape[1]} actions to {args.out}")
    return 0
