"""`edgevla quantize`: int8 / fp16 artifacts from a checkpoint or an fp32 artifact, and bitsandbytes
int8 / nf4 torch checkpoints."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edgevla.errors import EdgevlaError

METHODS = ("int8-dynamic", "int8-static", "fp16", "bnb-int8", "bnb-nf4")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint directory, or an fp32 artifact (ART)")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--out", required=True, help="directory to create")
    parser.add_argument(
        "--calibration",
        help="int8-static: a LeRobotDataset v3.0 directory or a folder of observation .npz files",
    )
    parser.add_argument(
        "--calibration-frames", type=int, default=32, help="observations drawn for calibration"
    )
    parser.add_argument("--vlm-dir", help="local SmolVLM config+tokenizer dir (lerobot checkpoints)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.runtime.artifact import is_artifact

    source = Path(args.policy)
    if args.method.startswith("bnb-"):
        from edgevla.export.bnb import quantize_bnb

        if is_artifact(source):
            raise EdgevlaError(
                "bitsandbytes quantizes the torch model: pass the checkpoint, not an ONNX artifact"
            )
        facts = quantize_bnb(source, args.method, args.out, vlm_dir=args.vlm_dir)
        print(f"wrote {args.out}: {json.dumps(facts)}")
        return 0
    from edgevla.export.calibration_samples import observations
    from edgevla.export.quantize import quantize_artifact

    calibration = observations(args.calibration, args.calibration_frames) if args.calibration else None
    with tempfile.TemporaryDirectory() as work:
        if not is_artifact(source):
            from edgevla.export.onnx_graphs import export_onnx
            from edgevla.model.checkpoint import load_policy

            source = export_onnx(
                load_policy(source, vlm_dir=args.vlm_dir), Path(work) / "fp32", source=args.policy
            )
        out = quantize_artifact(source, args.method, args.out, calibration)
    weights = json.loads((out / "manifest.json").read_text())["quantization"]["weights"]
    for graph, counts in weights.items():
        print(f"{graph}: {json.dumps(counts)}")
    print(f"wrote {out} ({args.method})")
    return 0
