"""Export a torch policy as the three ONNX graphs of an artifact (see edgevla.runtime.artifact).

    context.onnx  System 2: images + language -> the VLM's keys/values (rarely run; cacheable)
    state.onnx    System 1, once per chunk: the state token against that context, and the expert's
                  per-chunk view of the prefix (cross layers' k/v projections done here, once)
    head.onnx     one step of the action head (flow: one velocity; fast: one decode step with
                  its KV cache), run by the head's numpy loop (edgevla.runtime.head_loops)

Why a numpy loop between graph calls rather than one graph with the loop unrolled: RTC guidance
acts on the chunk between steps, the prefix cache is reused by every step, and a single
unrolled graph is `num_steps` times bigger to build for TensorRT (docs/EXPORT.md has the
measured comparison). Why the prefix is split: image and language tokens never attend to the
state token, so their keys/values can be computed at the camera's pace while the state token,
cheap, is run fresh for every chunk (docs/DUAL.md).

Shapes are static (batch 1, fixed camera slots, fixed language width): TensorRT builds one
engine per shape anyway, and the language width is the checkpoint's tokenizer max length
(or more), so no instruction that the torch policy reads in full is cut here.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from edgevla.errors import EdgevlaError
from edgevla.export.known_noise import TORCHVISION_OPS, dropped
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy
from edgevla.runtime.artifact import Manifest, write_manifest

CONTEXT_INPUTS = ["images", "image_masks", "tokens", "token_mask"]
CONTEXT_OUTPUTS = ["context_k", "context_v", "context_mask"]
STATE_INPUTS = ["state", *CONTEXT_OUTPUTS]
STATE_OUTPUTS = ["expert_k", "expert_v", "prefix_mask"]
# protobuf cannot hold a graph over 2 GB; above this many weight bytes, weights go to .onnx.data
EXTERNAL_DATA_BYTES = 1_800_000_000


class ContextGraph(nn.Module):
    def __init__(self, net: SmolVLANet):
        super().__init__()
        self.net = net

    def forward(self, images: Tensor, image_masks: Tensor, tokens: Tensor, token_mask: Tensor):
        return self.net.encode_context(images, image_masks, tokens, token_mask)


class StateGraph(nn.Module):
    def __init__(self, net: SmolVLANet):
        super().__init__()
        self.net = net

    def forward(self, state: Tensor, context_k: Tensor, context_v: Tensor, context_mask: Tensor):
        prefix_k, prefix_v, prefix_mask = self.net.encode_state(state, context_k, context_v, context_mask)
        return (*self.net.expert_cache(prefix_k, prefix_v), prefix_mask)


class HeadGraph(nn.Module):
    def __init__(self, net: SmolVLANet):
        super().__init__()
        self.net = net

    def forward(self, *args: Tensor):
        *inputs, expert_k, expert_v, prefix_mask = args
        return self.net.head.step(
            self.net, *inputs, expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask
        )


def example_inputs(net: SmolVLANet, max_tokens: int) -> dict[str, tuple[Tensor, ...]]:
    """Batch-of-one example inputs of the three graphs (their shapes become the graphs' static
    shapes); each graph's example comes from running the one before it."""
    cfg = net.cfg
    slots, size = cfg.num_image_slots, cfg.resize
    context_args = (
        torch.zeros(1, slots, 3, size, size),
        torch.ones(1, slots, dtype=torch.bool),
        torch.zeros(1, max_tokens, dtype=torch.long),
        torch.ones(1, max_tokens, dtype=torch.bool),
    )
    with torch.no_grad():
        state_args = (torch.zeros(1, cfg.max_state_dim), *net.encode_context(*context_args))
        cache = StateGraph(net)(*state_args)
    return {"context": context_args, "state": state_args, "head": (*net.head.example_step_inputs(), *cache)}


def graph_modules(net: SmolVLANet) -> dict[str, tuple[nn.Module, list[str], list[str]]]:
    """graph name -> (module, input names, output names): the three graphs of an artifact."""
    head = net.head
    return {
        "context": (ContextGraph(net), CONTEXT_INPUTS, CONTEXT_OUTPUTS),
        "state": (StateGraph(net), STATE_INPUTS, STATE_OUTPUTS),
        "head": (HeadGraph(net), [*head.step_inputs, *STATE_OUTPUTS], list(head.step_outputs)),
    }


def export_graph(
    module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], opset: int
) -> None:
    external = sum(p.numel() * p.element_size() for p in module.parameters()) > EXTERNAL_DATA_BYTES
    with warnings.catch_warnings(), torch.no_grad(), dropped(TORCHVISION_OPS):
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not the user's problem
        program = torch.onnx.export(
            module.eval(),
            args,
            dynamo=True,
            opset_version=opset,
            input_names=inputs,
            output_names=outputs,
            verbose=False,
        )
    if program is None:
        raise EdgevlaError(f"torch.onnx.export returned nothing for {path.name}")
    program.save(str(path), external_data=external)


def resolve_cameras(policy: TorchPolicy, cameras: list[str] | None) -> list[str]:
    """The camera names the artifact expects, in prefix order; renaming keeps the slot order."""
    trained = list(policy.cfg.cameras)
    if not cameras:
        return trained
    if len(cameras) != len(trained) or len(set(cameras)) != len(cameras):
        raise EdgevlaError(
            f"--cameras needs {len(trained)} distinct names (the checkpoint's slots {trained}, in order); "
            f"got {cameras}"
        )
    return cameras


def export_onnx(
    policy: TorchPolicy,
    out: str | Path,
    cameras: list[str] | None = None,
    max_tokens: int | None = None,
    opset: int = 18,
    source: str = "",
    log=print,
) -> Path:
    """Write ART (three graphs, tokenizer, stats, manifest) for `policy`; returns its path."""
    if policy.dtype != "fp32" or policy.device.type != "cpu":
        raise EdgevlaError(
            "export from an fp32 CPU policy (the dynamo exporter is exact there); quantize after"
        )
    cfg = policy.cfg
    width = max_tokens or cfg.tokenizer_max_length
    if width < cfg.tokenizer_max_length:
        raise EdgevlaError(
            f"--max-tokens {width} is below the checkpoint's tokenizer max length {cfg.tokenizer_max_length}: "
            "instructions would be cut (a static width of 16 cost LIBERO 29 points of success); use >= "
            f"{cfg.tokenizer_max_length}"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise EdgevlaError(f"{out} exists and is not empty: choose a new --out directory")
    names = resolve_cameras(policy, cameras)
    net = policy.net
    head = net.head
    head_fields = head.manifest_fields()  # first: an unfitted head (bins, fast) is refused here
    examples = example_inputs(net, width)
    graphs = graph_modules(net)
    # Build in a sibling temp dir and rename at the end: a failed export leaves no half artifact.
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for graph, (module, inputs, outputs) in graphs.items():
            log(f"exporting the {graph} graph" + (f" ({head.name})" if graph == "head" else ""))
            export_graph(module, examples[graph], work / f"{graph}.onnx", inputs, outputs, opset)
        shutil.copyfile(policy.tokenizer_path, work / "tokenizer.json")
        write_stats(policy, work / "stats.npz")
        for name, text in head.artifact_files().items():  # e.g. FAST's BPE tokenizer
            (work / name).write_text(text)
        io = replace(cfg.io, cameras=tuple(names), max_tokens=width)
        manifest = Manifest(
            name=policy.spec.name,
            precision="fp32",
            **{**asdict(io), "cameras": list(io.cameras)},
            camera_shapes=[list(s) for s in cfg.camera_shapes],
            expert_hidden_size=cfg.expert_hidden_size,
            head=head_fields,
            min_period=cfg.min_period,
            max_period=cfg.max_period,
            opset=opset,
            source=source,
        )
        write_manifest(work, manifest)
        work.chmod(0o755)
        if out.exists():
            out.rmdir()
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def write_stats(policy: TorchPolicy, path: Path) -> None:
    arrays = {}
    for kind, stats in (("state", policy.pre.state_stats), ("action", policy.pre.action_stats)):
        if stats.mean is not None:
            arrays[f"{kind}.mean"], arrays[f"{kind}.std"] = np.asarray(stats.mean), np.asarray(stats.std)
    np.savez(path, **arrays)
