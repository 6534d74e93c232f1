"""`edgevla train`: run a recipe. One process per device; under `accelerate launch`, DDP.

The loop is plain: for each optimizer step, `grad_accum` micro-batches (gradients synchronised
on the last), clip, set the learning rate from the schedule, AdamW step. Metrics go to
OUT/metrics.jsonl (see docs/TRAINING.md), checkpoints to OUT/checkpoints/, and at the end the
PEFT adapter to OUT/adapter/ (LoRA) and the merged, self-contained policy to OUT/policy/.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import save_policy
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy, make_preprocessor
from edgevla.signals import Interrupts
from edgevla.train import data as train_data
from edgevla.train.corrections import (
    POSITIVE,
    check_indicator_fits,
    check_rounds_present,
    frame_repeats,
    good_frames,
)
from edgevla.train.prepare import (
    Objective,
    apply_mode,
    count_parameters,
    dataset_dims,
    load_base,
    set_gradient_checkpointing,
)
from edgevla.train.recipe import Recipe, recipe_to_dict
from edgevla.train.state import latest_checkpoint, load_checkpoint, save_checkpoint

MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
EVAL_SEED = 1234  # fixed noise/time for eval losses, so they compare across steps and runs


def learning_rate(step: int, optim) -> float:
    """Linear warmup to lr, then cosine decay to decay_lr at decay_steps (SmolVLA's schedule)."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / (optim.warmup_steps + 1)
    progress = min(1.0, (step - optim.warmup_steps) / max(1, optim.decay_steps - optim.warmup_steps))
    return optim.decay_lr + (optim.lr - optim.decay_lr) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Outputs:
    out: Path
    steps: int
    final_loss: float | None
    policy: Path | None
    adapter: Path | None
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM after a step, checkpointed, nothing exported


class Run:
    """Everything a recipe builds before the first step (shared by training and --dry-run)."""

    def __init__(self, recipe: Recipe, source: str, show: bool, accelerator):
        self.recipe, self.source, self.accelerator = recipe, source, accelerator
        self.readers = train_data.open_datasets(recipe, source)
        say = tqdm.write if show else (lambda _: None)
        self.cameras = train_data.camera_mapping(recipe.features, self.readers, source, say)
        dims = dataset_dims(self.readers[0], recipe.features, self.cameras)
        for reader in self.readers[1:]:
            if dataset_dims(reader, recipe.features, self.cameras) != dims:
                raise EdgevlaError(
                    f"{source}: datasets: {reader.root} differs from {self.readers[0].root} "
                    "in state/action size, fps or camera shapes"
                )
        self.base = load_base(recipe, self.cameras, dims, source)
        # from here on the model's cameras carry the dataset's names (load_base renamed them)
        self.cameras = {
            name: self.cameras[slot] for slot, name in train_data.recorded_names(self.cameras).items()
        }
        self.net, self.peft = apply_mode(self.base.net, recipe, source)
        # the data carries its own conditioning text (corrections.advantage); a suffix the base
        # was asked with would be appended on top of it
        self.base.net.cfg = self.cfg = replace(self.base.net.cfg, task_suffix="")
        set_gradient_checkpointing(self.base.net, recipe.gradient_checkpointing)
        self.state_stats = train_data.dataset_stats(self.readers, recipe.features.state)
        self.action_stats = train_data.dataset_stats(self.readers, recipe.features.action)
        self.pre = make_preprocessor(self.cfg, self.base.tokenizer, self.state_stats, self.action_stats)
        train_refs, eval_refs = train_data.split_episodes(self.readers, recipe.eval.episodes)
        if self.base.fresh_head or not self.cfg.head.fitted:
            # bins' range and FAST's tokenizer come from the training episodes' action chunks
            chunks = train_data.action_chunks(self.readers, train_refs, recipe.features.action, self.pre)
            try:
                self.base.net.fit_head(chunks)
            except ValueError as err:
                raise EdgevlaError(f"{source}: head: {err}") from err
            self.cfg = self.base.net.cfg
        train_refs = train_data.oversample_starts(train_refs, self.readers, recipe.oversample_start)
        fixes = recipe.corrections
        check_rounds_present(self.readers, fixes, source)
        repeats = [frame_repeats(reader, fixes) for reader in self.readers]
        train_refs = train_data.weight_corrections(train_refs, repeats)
        eval_refs = train_data.weight_corrections(eval_refs, [np.minimum(r, 1) for r in repeats])
        advantage = None
        if fixes.advantage:
            check_indicator_fits(self.readers, self.pre.tokenizer, source)
            advantage = [good_frames(reader, fixes) for reader in self.readers]
        frames = train_data.FrameCache(
            self.readers, sorted(set(self.cameras.values())), recipe.frame_cache_mb, show
        )
        pre = self.pre
        self.train_set = train_data.TrainSamples(
            self.readers, train_refs, recipe.features, self.cameras, pre, frames, advantage
        )
        self.eval_set = train_data.TrainSamples(
            self.readers, eval_refs, recipe.features, self.cameras, pre, frames, advantage
        )
        world = accelerator.num_processes
        per_step = recipe.batch_size * recipe.grad_accum * world
        steps_per_epoch = math.ceil(len(self.train_set) / per_step)
        self.total_steps = recipe.steps or max(1, math.ceil(recipe.epochs * steps_per_epoch))
        self.samples_per_step = per_step

    def loader(self, start_step: int, total_steps: int) -> torch.utils.data.DataLoader:
        recipe, acc = self.recipe, self.accelerator
        sampler = train_data.StepBatches(
            len(self.train_set),
            recipe.batch_size,
            recipe.seed,
            start_step * recipe.grad_accum,
            total_steps * recipe.grad_accum,
            acc.process_index,
            acc.num_processes,
        )
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=sampler,
            collate_fn=train_data.collate,
            num_workers=recipe.num_workers,
            persistent_workers=recipe.num_workers > 0,
            # its own generator: worker seeding must not draw from the global one (resume replays it)
            generator=torch.Generator().manual_seed(recipe.seed + start_step),
        )

    def eval_batches(self) -> list[dict[str, torch.Tensor]]:
        size, count = len(self.eval_set), self.recipe.eval.batches
        if size == 0 or count <= 0:
            return []
        batch = min(self.recipe.batch_size, size)
        starts = sorted({int(i) for i in torch.linspace(0, size - batch, count).round()})
        return [train_data.collate([self.eval_set[i] for i in range(s, s + batch)]) for s in starts]

    def policy(self, net) -> TorchPolicy:
        return TorchPolicy(net, self.pre, self.base.tokenizer, name=self.recipe.name)


def make_accelerator(recipe: Recipe):
    from accelerate import Accelerator

    wants_gpu = recipe.device == "cuda" or (recipe.device == "auto" and torch.cuda.is_available())
    if recipe.device == "cuda" and not torch.cuda.is_available():
        raise EdgevlaError("recipe device is cuda but torch sees no GPU: set device: auto or cpu")
    if recipe.precision == "fp16" and not wants_gpu:
        raise EdgevlaError("precision fp16 needs a GPU: use fp32 or bf16 on CPU (--set precision=fp32)")
    if recipe.cpu_threads > 0:
        torch.set_num_threads(recipe.cpu_threads)
    return Accelerator(cpu=not wants_gpu, mixed_precision=MIXED_PRECISION[recipe.precision])


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def oom_advice(recipe: Recipe) -> str:
    knobs = []
    if not recipe.gradient_checkpointing:
        knobs.append("gradient_checkpointing: true (the biggest saving)")
    if recipe.precision == "fp32":
        knobs.append("precision: bf16")
    knobs.append(
        f"batch_size: {max(1, recipe.batch_size // 2)} with grad_accum: {recipe.grad_accum * 2} "
        "(same effective batch)"
    )
    if recipe.mode != "lora":
        knobs.append("mode: lora")
    return (
        f"GPU out of memory at batch_size {recipe.batch_size}, precision {recipe.precision}, "
        f"gradient_checkpointing {recipe.gradient_checkpointing}: set "
        + "; ".join(knobs)
        + " (or pick a smaller-GPU recipe in recipes/)"
    )


class MetricsLog:
    """OUT/metrics.jsonl (one JSON object per line, flushed) and TensorBoard when installed."""

    def __init__(self, out: Path, enabled: bool, append: bool):
        self.file = open(out / "metrics.jsonl", "a" if append else "w") if enabled else None  # noqa: SIM115
        self.board = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                pass

    def write(self, record: dict[str, Any]) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.board is not None:
            for key, value in record.items():
                if isinstance(value, float) and key != "time":
                    self.board.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()


def evaluate(objective, head, batches, device) -> float | None:
    if not batches:
        return None
    generator = torch.Generator().manual_seed(EVAL_SEED)
    total = 0.0
    objective.eval()  # LoRA dropout off
    with torch.no_grad():
        for batch in batches:
            draws = head.held_out_draws(batch["actions"], generator)
            total += float(objective(to_device(batch, device), **to_device(draws, device)))
    objective.train()
    return total / len(batches)


def stop_agreed(interrupts: Interrupts, accelerator) -> bool:
    """Whether to stop after this step. Under DDP every process must stop after the same step (a
    collective that only some processes enter hangs), so one process's signal stops them all."""
    if accelerator.num_processes == 1:
        return interrupts.stop_requested
    flag = torch.tensor(float(interrupts.stop_requested), device=accelerator.device)
    return bool(accelerator.reduce(flag, "sum") > 0)


def train(
    recipe: Recipe,
    source: str,
    out: Path,
    max_steps: int | None = None,
    resume: bool = False,
    interrupts: Interrupts | None = None,
) -> Outputs:
    """`interrupts`: a Ctrl-C or SIGTERM during the steps ends the current step, saves a checkpoint
    (`resume=True` continues from it) and returns `Outputs.interrupted` without exporting."""
    accelerator = make_accelerator(recipe)
    main = accelerator.is_main_process
    torch.manual_seed(recipe.seed)
    run = Run(recipe, source, main, accelerator)
    total = min(run.total_steps, max_steps) if max_steps else run.total_steps
    params = [p for p in run.net.parameters() if p.requires_grad]
    optim = recipe.optim
    optimizer = torch.optim.AdamW(
        params, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps, weight_decay=optim.weight_decay
    )
    checkpoints = out / "checkpoints"
    start, elapsed = 0, 0.0
    torch.manual_seed(recipe.seed + 7919 * accelerator.process_index)  # noise, time, augmentation
    if resume:  # restores the generator state too
        found = latest_checkpoint(checkpoints)
        if found is None:
            raise EdgevlaError(f"--resume: no checkpoint in {checkpoints}; run without --resume to start")
        state = load_checkpoint(found, run.net, optimizer)
        start, elapsed = state["step"], state.get("elapsed_s", 0.0)
    objective, optimizer_prepared = accelerator.prepare(Objective(run.net), optimizer)
    objective.train()  # a loaded checkpoint comes in eval mode; LoRA dropout must be on
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(json.dumps(recipe_to_dict(recipe), indent=1))
    log = MetricsLog(out, main, append=resume)
    eval_batches = run.eval_batches()
    trainable, count = count_parameters(run.net)
    log.write(
        {
            "kind": "start",
            "step": start,
            "total_steps": total,
            "trainable_params": trainable,
            "total_params": count,
            "samples_per_step": run.samples_per_step,
            "train_frames": len(run.train_set),
            "eval_frames": len(run.eval_set),
            "time": time.time(),
        }
    )
    loss_value = None
    progress = tqdm(total=total, initial=start, disable=not main, unit="step", dynamic_ncols=True)
    batches = iter(run.loader(start, total))
    window_start, window_samples = time.perf_counter(), 0
    stopping = False
    deferring = contextlib.ExitStack()  # a signal is noted and acted on between steps
    if interrupts is not None:
        deferring.enter_context(interrupts.deferred(reraise=False))
    try:
        for step in range(start, total):
            lr = learning_rate(step, optim)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_loss = 0.0
            for micro in range(recipe.grad_accum):
                batch = to_device(next(batches), accelerator.device)
                batch["images"] = train_data.augment_images(
                    batch["images"], batch["image_masks"], recipe.augment
                )
                last = micro == recipe.grad_accum - 1
                with contextlib.nullcontext() if last else accelerator.no_sync(objective):
                    loss = objective(batch) / recipe.grad_accum
                    accelerator.backward(loss)
                step_loss += float(loss.detach())
            grad_norm = float(accelerator.clip_grad_norm_(params, optim.grad_clip))
            optimizer_prepared.step()
            optimizer_prepared.zero_grad(set_to_none=True)
            loss_value = float(accelerator.reduce(torch.tensor(step_loss, device=accelerator.device), "mean"))
            if not math.isfinite(loss_value):
                raise EdgevlaError(
                    f"loss became {loss_value} at step {step + 1}: lower optim.lr or use precision bf16/fp32"
                )
            done = step + 1
            window_samples += run.samples_per_step
            if done % recipe.log_interval == 0 or done == total:
                now = time.perf_counter()
                rate = window_samples / max(now - window_start, 1e-9)
                elapsed += now - window_start
                window_start, window_samples = now, 0
                log.write(
                    {
                        "kind": "train",
                        "step": done,
                        "loss": loss_value,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "samples_per_s": rate,
                        "elapsed_s": elapsed,
                        "total_steps": total,
                        "time": time.time(),
                    }
                )
                progress.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", samples_s=f"{rate:.1f}")
            if recipe.eval.interval and (done % recipe.eval.interval == 0 or done == total):
                eval_loss = evaluate(objective, run.net.head, eval_batches, accelerator.device)
                if eval_loss is not None:
                    log.write({"kind": "eval", "step": done, "eval_loss": eval_loss, "time": time.time()})
            # after the last step there is nothing left to save for: it finishes and exports
            stopping = interrupts is not None and done < total and stop_agreed(interrupts, accelerator)
            if done % recipe.checkpoint_interval == 0 or done == total or stopping:
                accelerator.wait_for_everyone()
                if main:
                    save_checkpoint(
                        checkpoints,
                        done,
                        run.net,
                        optimizer,
                        recipe.preset is not None,
                        {"elapsed_s": elapsed, "loss": loss_value},
                    )
            progress.update(1)
            if stopping:
                break
    except torch.cuda.OutOfMemoryError as err:
        raise EdgevlaError(oom_advice(recipe)) from err
    finally:
        progress.close()
        deferring.close()
    if stopping:
        log.write({"kind": "interrupted", "step": done, "loss": loss_value, "time": time.time()})
        log.close()
        return Outputs(out, done, loss_value, None, None, interrupted=True)
    accelerator.wait_for_everyone()
    policy_dir = adapter_dir = None
    if main:
        adapter_dir, policy_dir = export(run, out)
        log.write(
            {
                "kind": "done",
                "step": total,
                "loss": loss_value,
                "policy": str(policy_dir),
                "adapter": str(adapter_dir) if adapter_dir else None,
                "time": time.time(),
            }
        )
    log.close()
    return Outputs(out, total, loss_value, policy_dir, adapter_dir)


def export(run: Run, out: Path) -> tuple[Path | None, Path]:
    """OUT/adapter (PEFT, LoRA runs) and OUT/policy (merged edgevla checkpoint)."""
    set_gradient_checkpointing(run.base.net, False)
    adapter_dir = None
    if run.peft is not None:
        adapter_dir = out / "adapter"
        if run.recipe.preset is not None:  # a random base is only reproducible from its weights
            save_policy(run.policy(base_network(run)), out / "base")
        run.peft.save_pretrained(str(adapter_dir))
        _name_base(adapter_dir, run)
        merged = run.peft.merge_and_unload()
    else:
        merged = run.net
    # an advantage-conditioned policy is asked for good actions whenever it runs
    merged.cfg = replace(merged.cfg, task_suffix=POSITIVE if run.recipe.corrections.advantage else "")
    policy_dir = save_policy(run.policy(merged.eval()), out / "policy")
    return adapter_dir, policy_dir


def base_network(run: Run) -> SmolVLANet:
    """A plain copy of the LoRA run's frozen base (adapter weights left out)."""
    weights = {
        key.replace(".base_layer.", "."): value
        for key, value in run.net.state_dict().items()
        if "lora_" not in key and ".modules_to_save." not in key
    }
    weights = {key.replace(".original_module.", "."): value for key, value in weights.items()}
    net = SmolVLANet(run.cfg)
    net.load_state_dict(weights)
    return net


def _name_base(adapter_dir: Path, run: Run) -> None:
    """adapter_config.json's base_model_name_or_path: the checkpoint the adapter applies to."""
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text())
    base = adapter_dir.parent / "base" if run.recipe.preset is not None else Path(run.recipe.base)
    config["base_model_name_or_path"] = str(base.resolve())
    config_path.write_text(json.dumps(config, indent=2))
    # the adapted model config (cameras, dims) the adapter was trained with, for loaders
    (adapter_dir / "edgevla_model.json").write_text(json.dumps(run.cfg.to_dict(), indent=1))
