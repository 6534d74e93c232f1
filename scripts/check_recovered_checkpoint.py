"""Check a checkpoint that scripts/recover_checkpoint.py rebuilt against the artifact it came from.

    .venv/bin/python scripts/check_recovered_checkpoint.py SHIPPED_ART POLICY FP32_ART INT8_ART

POLICY is the recovered checkpoint; FP32_ART and INT8_ART are `edgevla export onnx` of it and
`edgevla quantize --method int8-dynamic` of that. On simulator observations (start poses and
poses part-way along the scripted expert's reach, eval seeds) with the same sampling noise, it
prints the largest action differences in the policy's units (the SO-101's normalised joints:
-100..100, gripper 0..100):

    torch (recovered)   vs shipped int8    what the recovery costs: int8 noise, if it worked
    fp32 ONNX (re-exp.) vs torch           the exporter (should be ~1e-4)
    fp32 ONNX (re-exp.) vs shipped int8    int8 noise of this network, for scale
    int8 (re-quantized) vs shipped int8    the round trip (same int8 weights -> ~0)
    shipped, two noises                    how far apart two samples of one policy are

and how many int8 weight tensors of the re-quantized graphs equal the shipped ones bit for bit.
Exits non-zero when the recovery is off by more than the int8 noise it is compared with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgevla.model.checkpoint import load_policy
from edgevla.runtime.artifact import GRAPHS
from edgevla.runtime.onnx_policy import OnnxPolicy
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.world import SimConfig, SimWorld

SEEDS = range(100_000, 100_006)
EXPERT_TIMES = (0.0, 0.8, 1.6)  # seconds along the expert's plan: rest, moving, near the cube


def observations() -> list[dict]:
    world = SimWorld(SimConfig(task="reach"))
    found = []
    for seed in SEEDS:
        episode = world.reset(seed)
        expert = ScriptedExpert(world.kin, episode)
        for t in EXPERT_TIMES:
            world.set_angles(expert.goal(t))
            found.append(world.observation())
    return found


def int8_tensors(art: Path) -> dict[str, np.ndarray]:
    tensors = {}
    for graph in GRAPHS:
        for init in onnx.load(str(art / f"{graph}.onnx")).graph.initializer:
            if init.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
                tensors[f"{graph}/{init.name}"] = numpy_helper.to_array(init)
    return tensors


def main(shipped_art: str, policy_dir: str, fp32_art: str, int8_art: str) -> int:
    torch_policy = load_policy(policy_dir)
    shipped = OnnxPolicy(shipped_art, providers=["cpu"])
    fp32, int8 = OnnxPolicy(fp32_art, providers=["cpu"]), OnnxPolicy(int8_art, providers=["cpu"])
    rng = np.random.default_rng(0)
    pairs = {
        "torch (recovered)   vs shipped int8": [],
        "fp32 ONNX (re-exp.) vs torch       ": [],
        "fp32 ONNX (re-exp.) vs shipped int8": [],
        "int8 (re-quantized) vs shipped int8": [],
        "shipped, two noises               ": [],
    }
    for obs in observations():
        noise, other = (rng.standard_normal(shipped.noise_shape, dtype=np.float32) for _ in range(2))
        a_torch = torch_policy.infer(obs, noise)
        a_shipped = shipped.infer(obs, noise)
        a_fp32, a_int8 = fp32.infer(obs, noise), int8.infer(obs, noise)
        for key, (a, b) in zip(
            pairs,
            [
                (a_torch, a_shipped),
                (a_fp32, a_torch),
                (a_fp32, a_shipped),
                (a_int8, a_shipped),
                (a_shipped, shipped.infer(obs, other)),
            ],
            strict=True,
        ):
            pairs[key].append(np.abs(a - b))
    print(
        f"{len(pairs[next(iter(pairs))])} observations x 20 actions x 6 joints; |difference| in robot units"
    )
    print("                                         max       p99      mean")
    for key, diffs in pairs.items():
        d = np.stack(diffs)
        print(f"{key}  {d.max():9.3g} {np.percentile(d, 99):9.3g} {d.mean():9.3g}")
    ours, theirs = int8_tensors(Path(int8_art)), int8_tensors(Path(shipped_art))
    same = [n for n in theirs if n in ours and np.array_equal(ours[n], theirs[n])]
    print(f"int8/uint8 weight tensors equal bit for bit: {len(same)} of {len(theirs)} shipped")
    recovery = np.stack(pairs["torch (recovered)   vs shipped int8"]).max()
    noise = np.stack(pairs["fp32 ONNX (re-exp.) vs shipped int8"]).max()
    ok = recovery <= 1.5 * noise and len(same) == len(theirs)
    print("OK" if ok else "FAILED: the recovery is off by more than int8 noise")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
