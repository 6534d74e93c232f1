"""`edgevla export onnx|tensorrt`: an ONNX artifact from a checkpoint; TensorRT engines from it."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target")
    onnx = sub.add_parser("onnx", help="two ONNX graphs + tokenizer + stats + manifest (the artifact, ART)")
    onnx.add_argument("--policy", required=True, help="edgevla or lerobot SmolVLA checkpoint directory")
    onnx.add_argument("--out", required=True, help="artifact directory to create")
    onnx.add_argument(
        "--cameras", help="comma-separated camera names the robot uses, one per checkpoint camera, in order"
    )
    onnx.add_argument(
        "--max-tokens",
        type=int,
        help="language width (default and minimum: the checkpoint's tokenizer max length)",
    )
    onnx.add_argument("--opset", type=int, default=18, help="ONNX opset (TensorRT 10.3 reads up to 20)")
    onnx.add_argument("--vlm-dir", help="local SmolVLM config+tokenizer dir (lerobot checkpoints)")
    onnx.set_defaults(handler=run_onnx)
    trt = sub.add_parser(
        "tensorrt", help="TensorRT engines from an artifact, or the trtexec recipe where none is installed"
    )
    trt.add_argument("--art", required=True, help="artifact directory (fp32, fp16 or int8-static)")
    trt.add_argument("--out", required=True, help="engine directory to create")
    precision = trt.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="allow fp16 kernels")
    precision.add_argument("--int8", action="store_true", help="int8 (needs an int8-static QDQ artifact)")
    trt.add_argument("--workspace-mb", type=int, default=2048, help="builder memory pool limit")
    trt.set_defaults(handler=run_tensorrt)


def run_onnx(args: argparse.Namespace) -> int:
    from edgevla.export.onnx_graphs import export_onnx
    from edgevla.model.checkpoint import load_policy

    policy = load_policy(args.policy, vlm_dir=args.vlm_dir)
    cameras = [c.strip() for c in args.cameras.split(",")] if args.cameras else None
    out = export_onnx(
        policy, args.out, cameras=cameras, max_tokens=args.max_tokens, opset=args.opset, source=args.policy
    )
    print(f"wrote {out} (context.onnx, state.onnx, head.onnx, tokenizer, stats, manifest.json)")
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    from edgevla.export.tensorrt import build_engines

    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    report = build_engines(args.art, args.out, precision, args.workspace_mb)
    print(report)
    return 0
