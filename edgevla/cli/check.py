"""`edgevla check`: a checkpoint and its artifact on the same observations and noise."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from edgevla.errors import EdgevlaError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="the reference: checkpoint directory (torch fp32)")
    parser.add_argument(
        "--art", required=True, help="the candidate: artifact or quantized checkpoint directory"
    )
    parser.add_argument(
        "--obs", help="LeRobotDataset v3.0 dir or folder of observation .npz (default: synthetic)"
    )
    parser.add_argument("--frames", type=int, default=8, help="observations to compare on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shared noise")
    parser.add_argument(
        "--joint-units",
        default="range_m100_100",
        choices=["range_m100_100", "degrees"],
        help="the robot's joint action units (lerobot default RANGE_M100_100: 1 unit = 1.8 deg, full turn)",
    )
    parser.add_argument("--gripper-dims", default="", help="comma-separated gripper action dims (no degrees)")
    parser.add_argument(
        "--robot", help="robot definition (e.g. so101_follower): exact degrees from its calibration"
    )
    parser.add_argument(
        "--calibration", help="--robot's calibration JSON (lerobot format; default: that robot's profile)"
    )
    parser.add_argument("--vlm-dir", help="local SmolVLM config+tokenizer dir (lerobot checkpoints)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.export.calibration_samples import observations
    from edgevla.export.parity import assumed_degrees_per_unit, compare, degrees_per_unit
    from edgevla.hosting import open_policy
    from edgevla.model.checkpoint import load_policy
    from edgevla.runtime.synthetic import synthetic_observation

    if args.calibration and not args.robot:
        raise EdgevlaError("--calibration needs --robot, the robot whose joints it calibrates")
    reference = load_policy(args.policy, vlm_dir=args.vlm_dir)
    candidate = open_policy(args.art, vlm_dir=args.vlm_dir)
    if args.obs:
        obs = observations(args.obs, args.frames)
    else:
        obs = (synthetic_observation(reference.spec, seed) for seed in range(args.frames))
    if args.robot:
        from edgevla.drivers.calibration import NormTable, check_fits, find_profile, load_calibration
        from edgevla.hardware import load_robot

        robot = load_robot(args.robot)
        profile = find_profile(robot, explicit=args.calibration).path  # default: that robot's profile
        calibration = load_calibration(profile)
        check_fits(calibration, robot, profile)
        degrees = degrees_per_unit(NormTable.build(robot, calibration))
        units = f"calibrated {args.robot}"
    else:
        grippers = tuple(int(d) for d in args.gripper_dims.split(",") if d.strip())
        degrees = assumed_degrees_per_unit(reference.spec.action_dim, args.joint_units, grippers)
        units = f"assumed {args.joint_units} (full turn)"
    errors, chunks = compare(reference, candidate, obs, degrees, args.seed)
    summary = {
        "reference": args.policy,
        "candidate": args.art,
        "candidate_backend": candidate.spec.extra.get("precision", candidate.spec.extra.get("backend")),
        "chunks": chunks,
        "observations": args.obs or "synthetic",
        "degrees_from": units,
        "max_abs": max(e.max_abs for e in errors),
        "mean_abs_degrees": [e.mean_abs_degrees for e in errors],
        "per_dim": [asdict(e) for e in errors],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{args.art} vs {args.policy}: {chunks} chunks, {summary['observations']} observations; degrees {units}"
    )
    print(f"{'dim':>4} {'max abs':>10} {'mean abs':>10} {'cosine':>9} {'mean deg':>9} {'max deg':>9}")
    for e in errors:
        deg = (
            f"{e.mean_abs_degrees:9.3f} {e.max_abs_degrees:9.3f}"
            if e.mean_abs_degrees is not None
            else f"{'-':>9} {'-':>9}"
        )
        print(f"{e.dim:>4} {e.max_abs:10.2e} {e.mean_abs:10.2e} {e.cosine:9.6f} {deg}")
    return 0
