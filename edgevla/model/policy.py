"""The torch policy: SmolVLANet + the shared numpy pre/post-processing, behind `Policy`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgevla.errors import EdgevlaError
from edgevla.model.config import ModelConfig
from edgevla.model.heads import GuidanceTarget
from edgevla.model.network import SmolVLANet
from edgevla.policy_io import TIMESTAMP_KEY, Context, DualPolicy, Guidance, Observation
from edgevla.runtime.preprocess import MeanStd, ModelInputs, Preprocessor, TaskTokenizer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EdgevlaError(f"device '{device}' requested but torch sees no CUDA GPU: use --device cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise EdgevlaError(f"unknown device '{device}': use cpu or cuda")
    return torch.device(device)


def make_preprocessor(
    cfg: ModelConfig, tokenizer_path: Path, state: MeanStd, action: MeanStd
) -> Preprocessor:
    io = cfg.io
    return Preprocessor(io, TaskTokenizer(tokenizer_path, io.max_tokens), state, action)


ITERATIVE_HEADS = ("flow", "diffusion")  # the heads whose sampling takes a step count


def check_steps(head, num_steps: int | None) -> int | None:
    """`--steps` for a torch policy: 1..10, and only for a head that iterates."""
    if num_steps is None:
        return None
    if head.name not in ITERATIVE_HEADS:
        raise EdgevlaError(
            f"--steps applies to the {', '.join(ITERATIVE_HEADS)} heads; this policy's head is {head.name}: drop --steps"
        )
    if not 1 <= num_steps <= 10:
        raise EdgevlaError(f"--steps {num_steps} is outside 1..10")
    return num_steps


class TorchPolicy(DualPolicy):
    """A loaded SmolVLA-class policy running in torch."""

    def __init__(
        self,
        net: SmolVLANet,
        preprocessor: Preprocessor,
        tokenizer_path: Path,
        name: str = "policy",
        device: str = "cpu",
        dtype: str = "fp32",
        num_steps: int | None = None,
    ):
        if dtype not in DTYPES:
            raise EdgevlaError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
        self.device = resolve_device(device)
        if dtype == "fp16" and self.device.type == "cpu":
            raise EdgevlaError("fp16 needs a GPU (CPU kernels are missing or slow): use fp32 or bf16 on CPU")
        self.net = net.to(device=self.device, dtype=DTYPES[dtype]).eval()
        self.pre = preprocessor
        self.tokenizer_path = tokenizer_path
        self.dtype = dtype
        self.num_steps = check_steps(net.head, num_steps)
        self.holds = 0  # chunks the head could not decode (fast), replaced by a hold
        self.spec = net.cfg.io.spec(name, {"backend": "torch", "dtype": dtype, "head": net.head.name})

    @property
    def cfg(self) -> ModelConfig:
        return self.net.cfg

    def batch(self, inputs: ModelInputs) -> dict[str, torch.Tensor]:
        """Numpy model inputs -> a batch of one on the policy's device."""
        return {
            "images": torch.from_numpy(inputs.images)[None].to(self.device),
            "image_masks": torch.from_numpy(inputs.image_masks)[None].to(self.device),
            "tokens": torch.from_numpy(inputs.tokens)[None].to(self.device),
            "token_mask": torch.from_numpy(inputs.token_mask)[None].to(self.device),
            "state": torch.from_numpy(inputs.state)[None].to(self.device),
        }

    def encode_context(self, obs: Observation) -> Context:
        images, image_masks, tokens, token_mask = (
            torch.from_numpy(array)[None].to(self.device) for array in self.pre.context(obs)
        )
        stamp = obs.get(TIMESTAMP_KEY)
        with torch.no_grad():
            arrays = self.net.encode_context(images, image_masks, tokens, token_mask)
        return Context(arrays, None if stamp is None else float(stamp))

    def act(
        self,
        context: Context,
        obs: Observation,
        noise: np.ndarray | None = None,
        guidance: Guidance | None = None,
    ) -> np.ndarray:
        state = torch.from_numpy(self.pre.state(obs))[None].to(self.device)
        noise_t = None
        if noise is not None:
            noise_t = torch.from_numpy(self.pre.check_noise(noise))[None].to(self.device)
        target = None if guidance is None or not self.net.head.guidable else self._guidance(guidance)
        with torch.no_grad():
            prefix_k, prefix_v, prefix_mask = self.net.encode_state(state, *context.arrays)
            expert_k, expert_v = self.net.expert_cache(prefix_k, prefix_v)
            chunk = self.net.head.sample(
                self.net,
                expert_k,
                expert_v,
                prefix_mask,
                noise=noise_t,
                guidance=target,
                num_steps=self.num_steps,
            )
        chunk = chunk[0].float().cpu().numpy()
        if self.net.head.can_hold and np.isnan(chunk).all():
            self.holds += 1
            return self.pre.hold(obs)
        return self.pre.postprocess(chunk)

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        return self.act(self.encode_context(obs), obs, noise, guidance)

    def _guidance(self, guidance: Guidance) -> GuidanceTarget:
        actions, weights = self.pre.guidance(guidance.actions, guidance.weights)
        return GuidanceTarget(
            torch.from_numpy(actions).to(self.device),
            torch.from_numpy(weights).to(self.device),
            self.cfg.action_dim,
        )
