"""FAST tokens (π0-FAST), decoded autoregressively by the expert against the prefix.

A chunk becomes a short sequence of BPE tokens (edgevla.runtime.head_math.FastCodec: DCT per
action dimension over the chunk, scaled by `head.scale` and rounded, low frequencies of every
dimension first, BPE fitted on the training data's chunks when training starts and kept in the
config). The expert reads [BOS, t1, t2, ...] causally and predicts the next token (cross-entropy,
teacher forcing); id `vocab_size` is both BOS (input) and EOS (output).

The exported step graph is one decode step with its own KV cache: the new token, its position
and the suffix keys/values of the joint expert layers (`SmolVLANet.decode_expert`) in; the next
token's logits and the updated cache out. Decoding is greedy, up to `head.max_tokens` steps. A
sequence that does not spell a whole chunk (wrong coefficient count, no EOS in time) yields a
chunk of NaN: the policy turns it into a hold (the current state repeated) and counts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from edgevla.model.heads.base import ActionHead, GuidanceTarget
from edgevla.runtime.head_math import FastCodec, decode_chunks, fit_fast

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig
    from edgevla.model.network import SmolVLANet

TOKENIZER_FILE = "action_tokenizer.json"  # the BPE tokenizer, beside the artifact's graphs


class FastHead(ActionHead):
    name = "fast"
    step_inputs = ("token", "position", "suffix_k", "suffix_v")
    step_outputs = ("logits", "suffix_k_out", "suffix_v_out")
    needs_noise = False
    can_hold = True

    def __init__(self, cfg: ModelConfig, width: int):
        super().__init__(cfg, width)
        self.end = cfg.head.vocab_size  # BOS in, EOS out
        self.token_embedding = nn.Embedding(cfg.head.vocab_size + 1, width)
        self.action_out_proj = nn.Linear(width, cfg.head.vocab_size + 1)
        self._codec: tuple[str, FastCodec] | None = None

    @property
    def codec(self) -> FastCodec:
        """The fitted tokenizer (rebuilt when the config's changes, e.g. after `fit`)."""
        self.check_fitted()
        head = self.cfg.head
        if self._codec is None or self._codec[0] != head.tokenizer:
            self._codec = (
                head.tokenizer,
                FastCodec(head.tokenizer, head.min_token, head.max_token, head.scale),
            )
        return self._codec[1]

    def fit(self, chunks: np.ndarray) -> dict[str, Any]:
        return fit_fast(chunks, self.cfg.head.scale, self.cfg.head.vocab_size)

    def step(
        self,
        trunk: SmolVLANet,
        token: Tensor,
        position: Tensor,
        suffix_k: Tensor,
        suffix_v: Tensor,
        *,
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """token (B, 1) int64 at suffix position (B,) int64 -> next-token logits (B, vocab + 1)
        fp32, and the caches with its keys/values written."""
        dtype = self.action_out_proj.weight.dtype
        x = self.token_embedding(token).to(dtype)
        hidden, suffix_k, suffix_v = trunk.decode_expert(
            x, position, suffix_k, suffix_v, expert_k, expert_v, prefix_mask
        )
        return self.action_out_proj(hidden[:, 0].to(dtype)).float(), suffix_k, suffix_v

    def empty_cache(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """Suffix keys (or values) of nothing yet: (joint expert layers, B, max_tokens, kv_heads, head_dim)."""
        self.check_fitted()
        cfg, text = self.cfg, self.cfg.text
        joint = sum(cfg.is_joint_layer(i * cfg.vlm_layers_per_expert_layer) for i in range(cfg.expert_layers))
        shape = (joint, batch, cfg.head.max_tokens, text.num_kv_heads, text.head_dim)
        return torch.zeros(shape, dtype=dtype, device=device)

    def example_step_inputs(self) -> tuple[Tensor, ...]:
        cache = self.empty_cache(1)
        return torch.full((1, 1), self.end, dtype=torch.long), torch.zeros(1, dtype=torch.long), cache, cache

    def targets(self, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forcing inputs [BOS, t1..] and targets [t1.., EOS] (B, max_tokens) int64, padded
        with EOS; the mask (B, max_tokens) marks the real targets. Longer sequences are cut."""
        length = self.cfg.head.max_tokens
        ids = self.codec.encode(actions[..., : self.cfg.action_dim].float().cpu().numpy())
        targets = np.full((len(ids), length), self.end, dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=np.float32)
        for row, sequence in enumerate(ids):
            sequence = [*sequence[: length - 1], self.end]
            targets[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        return torch.from_numpy(targets).to(actions.device), torch.from_numpy(mask).to(actions.device)

    def loss(
        self,
        trunk: SmolVLANet,
        batch: dict[str, Tensor],
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> Tensor:
        """Mean next-token cross-entropy over each sequence's tokens and its EOS."""
        targets, mask = self.targets(batch["actions"])
        inputs = torch.cat([torch.full_like(targets[:, :1], self.end), targets[:, :-1]], dim=1)
        dtype = self.action_out_proj.weight.dtype
        hidden = trunk.run_expert(self.token_embedding(inputs).to(dtype), expert_k, expert_v, prefix_mask)
        logits = self.action_out_proj(hidden.to(dtype)).float()
        errors = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(
            targets.shape
        )
        return (errors * mask).sum() / mask.sum()

    def tokens(
        self, trunk: SmolVLANet, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor
    ) -> list[list[int]]:
        """Greedy decoding: per batch row, the token ids before EOS (or all max_tokens of them,
        EOS never came)."""
        batch, device = prefix_mask.shape[0], prefix_mask.device
        suffix_k = suffix_v = self.empty_cache(batch, dtype=expert_k.dtype, device=device)
        token = torch.full((batch, 1), self.end, dtype=torch.long, device=device)
        sequences: list[list[int]] = [[] for _ in range(batch)]
        finished = [False] * batch
        for position in range(self.cfg.head.max_tokens):
            where = torch.full((batch,), position, dtype=torch.long, device=device)
            logits, suffix_k, suffix_v = self.step(
                trunk,
                token,
                where,
                suffix_k,
                suffix_v,
                expert_k=expert_k,
                expert_v=expert_v,
                prefix_mask=prefix_mask,
            )
            token = logits.argmax(dim=-1, keepdim=True)
            for row, value in enumerate(token[:, 0].tolist()):
                finished[row] = finished[row] or value == self.end
                if not finished[row]:
                    sequences[row].append(value)
            if all(finished):
                break
        return sequences

    def sample(
        self,
        trunk: SmolVLANet,
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
        noise: Tensor | None = None,
        guidance: GuidanceTarget | None = None,
        num_steps: int | None = None,
    ) -> Tensor:
        with torch.no_grad():
            sequences = self.tokens(trunk, expert_k, expert_v, prefix_mask)
        self.last_tokens = sequences
        chunk = decode_chunks(
            self.codec, sequences, self.cfg.chunk_size, self.cfg.action_dim, self.cfg.max_action_dim
        )
        return torch.from_numpy(chunk).to(prefix_mask.device)

    def manifest_fields(self) -> dict[str, Any]:
        head = self.cfg.head
        fields = ("scale", "vocab_size", "min_token", "max_token", "max_tokens")
        return {
            "name": self.name,
            "action_dim": self.cfg.action_dim,
            "tokenizer": TOKENIZER_FILE,
            "cache_shape": list(self.empty_cache(1).shape),
        } | {f: getattr(head, f) for f in fields}

    def artifact_files(self) -> dict[str, str]:
        self.check_fitted()
        return {TOKENIZER_FILE: self.cfg.head.tokenizer}
