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
    onnx.add_argument(
        "--vision-size",
        type=int,
        help="image size (px) the vision encoder runs at, e.g. 256 (default: the checkpoint's); "
        "fewer patches, a faster prefix, some action error (docs/PERFORMANCE.md)",
    )
    onnx.add_argument(
        "--positions",
        choices=["bucket", "interpolate"],
        default="bucket",
        help="with --vision-size: SmolVLM's own position bucketing, or the table resampled bicubically",
    )
    onnx.add_argument(
        "--optimize",
        action="store_true",
        help="fuse attention, GELU and RMSNorm into ONNX Runtime kernels (faster on CPU; "
        "build TensorRT engines from an artifact without it)",
    )
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
    if args.vision_size:
        from edgevla.model.resolution import at_resolution

        policy = at_resolution(policy, args.vision_size, args.positions)
    cameras = [c.strip() for c in args.cameras.split(",")] if args.cameras else None
    out = export_onnx(
        policy, args.out, cameras=cameras, max_tokens=args.max_tokens, opset=args.opset, source=args.policy
    )
    if args.optimize:
        from edgevla.export.fusion import optimize_artifact

        optimize_artifact(out)
    graphs = ", ".join(sorted(p.name for p in out.glob("*.onnx")))
    print(f"wrote {out} ({graphs}, tokenizer, stats, manifest.json)")
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    from edgevla.export.tensorrt import build_engines

    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    report = build_engines(args.art, args.out, precision, args.workspace_mb)
    print(report)
    return 0
