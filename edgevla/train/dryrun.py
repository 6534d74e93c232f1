"""`edgevla train --dry-run`: parameter counts, batch shapes and memory, without training.

On a GPU it runs a few real optimizer steps and reports torch's peak allocated memory. On CPU
it estimates the GPU peak: weights + gradients + AdamW state (from the parameter counts) plus
the activations autograd keeps for the backward pass, measured on one real micro-batch of
size 1 (with the recipe's precision and checkpointing) and scaled to the batch size.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from edgevla.train.loop import Run, make_accelerator, to_device
from edgevla.train.prepare import Objective, count_parameters
from edgevla.train.recipe import Recipe

GIB = 2**30


def saved_activation_bytes(objective: Objective, batch: dict[str, torch.Tensor], precision: str) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    dtype = torch.bfloat16 if precision != "fp32" else None
    autocast = torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), autocast:
        objective(batch)
    parameters = {p.untyped_storage().data_ptr() for p in objective.parameters()}
    return sum(size for pointer, size in seen.items() if pointer not in parameters)


def dry_run(recipe: Recipe, source: str, steps: int = 3) -> dict[str, Any]:
    if not torch.cuda.is_available():  # estimate a GPU recipe's memory on this CPU
        recipe = replace(
            recipe, device="cpu", precision="bf16" if recipe.precision == "fp16" else recipe.precision
        )
    recipe = replace(recipe, num_workers=0)  # one batch is all it reads
    accelerator = make_accelerator(recipe)
    run = Run(recipe, source, accelerator.is_main_process, accelerator)
    trainable, total = count_parameters(run.net)
    loader = iter(run.loader(0, steps))
    first = next(loader)
    report: dict[str, Any] = {
        "recipe": recipe.name,
        "trainable_params": trainable,
        "total_params": total,
        "train_frames": len(run.train_set),
        "eval_frames": len(run.eval_set),
        "steps": run.total_steps,
        "samples_per_step": run.samples_per_step,
        "batch": {
            key: [*value.shape, str(value.dtype).replace("torch.", "")] for key, value in first.items()
        },
    }
    objective = Objective(run.net).to(accelerator.device)
    if accelerator.device.type == "cuda":
        params = [p for p in run.net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=recipe.optim.lr)
        objective, optimizer = accelerator.prepare(objective, optimizer)
        torch.cuda.reset_peak_memory_stats()
        batch = first
        for _ in range(steps):
            for _ in range(recipe.grad_accum):
                accelerator.backward(objective(to_device(batch, accelerator.device)) / recipe.grad_accum)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            batch = next(loader, first)
        report["memory"] = {
            "kind": "measured",
            "peak_gib": torch.cuda.max_memory_allocated() / GIB,
            "device": torch.cuda.get_device_name(),
        }
        return report
    one = {key: value[:1] for key, value in first.items()}
    activations = saved_activation_bytes(objective, one, recipe.precision) * recipe.batch_size
    weights = total * 4  # autocast keeps fp32 weights and casts copies on the fly
    states = trainable * (4 + 8)  # fp32 gradients + AdamW exp_avg and exp_avg_sq
    report["memory"] = {
        "kind": "estimate (CPU: no GPU to measure on)",
        "weights_gib": weights / GIB,
        "grads_and_adam_gib": states / GIB,
        "activations_gib": activations / GIB,
        "peak_gib": (weights + states + activations) / GIB,
    }
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"recipe {report['recipe']}: {report['trainable_params']:,} trainable of {report['total_params']:,} "
        f"parameters ({100 * report['trainable_params'] / report['total_params']:.2f}%)",
        f"frames: {report['train_frames']} train, {report['eval_frames']} eval; {report['steps']} steps of "
        f"{report['samples_per_step']} samples",
        "batch:",
    ]
    lines += [f"  {key:<14} {tuple(shape[:-1])} {shape[-1]}" for key, shape in report["batch"].items()]
    memory = report["memory"]
    lines.append(f"peak memory: {memory['peak_gib']:.2f} GiB ({memory['kind']})")
    if "activations_gib" in memory:
        lines.append(
            f"  weights {memory['weights_gib']:.2f} + grads/AdamW {memory['grads_and_adam_gib']:.2f} + "
            f"activations {memory['activations_gib']:.2f} GiB (CUDA workspace and allocator slack not included)"
        )
    return "\n".join(lines)
