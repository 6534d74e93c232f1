"""`edgevla model ...`: inspect presets and checkpoints, create preset checkpoints."""

from __future__ import annotations

import argparse
import json

# the heads a random checkpoint can have: bins and fast need ranges / a tokenizer fitted on data
UNFITTED_HEADS = ("flow", "diffusion", "regression")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    info = sub.add_parser("info", help="parameter counts and shapes of a preset or a checkpoint")
    source = info.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="tiny, small or smolvla-450m")
    source.add_argument("--policy", help="an edgevla or lerobot policy directory")
    info.add_argument("--vlm-dir", help="local SmolVLM config+tokenizer dir (lerobot checkpoints)")
    info.add_argument("--freeze", default="expert", help="freezing policy for the trainable count")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=run_info)
    init = sub.add_parser("init", help="write a randomly initialised preset as an edgevla checkpoint")
    init.add_argument("--preset", required=True, help="tiny, small or smolvla-450m")
    init.add_argument("--out", required=True, help="directory to create")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument(
        "--head",
        default="flow",
        choices=UNFITTED_HEADS,
        help="action head (bins and fast fit their ranges/tokenizer on data: train them instead)",
    )
    init.set_defaults(handler=run_init)


def describe(net, name: str, freeze: str) -> dict:
    from edgevla.model.freezing import apply_freezing

    cfg = net.cfg
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    parts = {
        "vision": count(net.vision),
        "connector": count(net.connector),
        "embed_tokens": count(net.embed_tokens),
        "vlm_layers": count(net.vlm_layers),
        "expert": count(net.expert_layers) + count(net.expert_norm),
        "state_proj": count(net.state_proj),
        f"{net.head.name}_head": count(net.head),
        "unused_lm_head_and_norm": count(net.lm_head) + count(net.vlm_norm),
    }
    total = count(net)
    trainable = apply_freezing(net, freeze)
    return {
        "name": name,
        "params": total,
        "trainable_params": trainable,
        "freeze": freeze,
        "params_used_for_actions": total - parts["unused_lm_head_and_norm"],
        "parts": parts,
        "cameras": list(cfg.cameras),
        "empty_cameras": cfg.empty_cameras,
        "resize": cfg.resize,
        "tokens_per_image": cfg.tokens_per_image,
        "prefix_length": cfg.prefix_length,
        "vlm_layers": cfg.text.num_layers,
        "expert_layers": cfg.expert_layers,
        "expert_hidden": cfg.expert_hidden_size,
        "attention_mode": cfg.attention_mode,
        "self_attn_every_n_layers": cfg.self_attn_every_n_layers,
        "state_dim": cfg.state_dim,
        "action_dim": cfg.action_dim,
        "chunk_size": cfg.chunk_size,
        "num_steps": cfg.num_steps,
        "head": cfg.head.name,
    }


def run_info(args: argparse.Namespace) -> int:
    import torch

    from edgevla.model.checkpoint import load_policy
    from edgevla.model.config import preset
    from edgevla.model.network import SmolVLANet

    if args.preset:
        with torch.device("meta"):  # shapes only: no memory, no random init
            net, name = SmolVLANet(preset(args.preset)), args.preset
    else:
        net, name = load_policy(args.policy, vlm_dir=args.vlm_dir).net, args.policy
    facts = describe(net, name, args.freeze)
    if args.json:
        print(json.dumps(facts))
        return 0
    print(
        f"{facts['name']}: {facts['params'] / 1e6:.1f} M params, {facts['trainable_params'] / 1e6:.1f} M trainable ({args.freeze})"
    )
    for name, value in facts["parts"].items():
        print(f"  {name:<24} {value / 1e6:9.2f} M")
    for key in (
        "cameras",
        "resize",
        "prefix_length",
        "vlm_layers",
        "expert_layers",
        "chunk_size",
        "num_steps",
        "head",
    ):
        print(f"  {key:<24} {facts[key]}")
    return 0


def run_init(args: argparse.Namespace) -> int:
    from edgevla.model.checkpoint import build_preset, save_policy
    from edgevla.model.config import HeadConfig

    policy = build_preset(args.preset, seed=args.seed, head=HeadConfig(name=args.head))
    path = save_policy(policy, args.out)
    print(f"wrote {args.preset} with a {args.head} head (random weights, identity stats) to {path}")
    return 0
