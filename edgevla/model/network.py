"""The SmolVLA-class network: SmolVLM backbone (vision + connector + first N text layers), the
action expert's trunk, and an action head (edgevla.model.heads), written for export.

Inference is four calls with explicit tensors in and out, each a graph of the exported artifact:

    encode_context(images, image_masks, tokens, token_mask) -> (context_k, context_v, context_mask)
        System 2: one pass of the VLM over [image tokens; language tokens]; the post-RoPE keys and
        values of every VLM layer, (num_vlm_layers, B, C, kv_heads, head_dim) each. Rarely run.
    encode_state(state, context_k, context_v, context_mask) -> (prefix_k, prefix_v, prefix_mask)
        System 1, per chunk: the state token against the cached context; the full prefix cache.
    expert_cache(prefix_k, prefix_v) -> (expert_k, expert_v)
        Per chunk: what each expert layer attends to (cross layers project the cache once here).
    head.step(...) against (expert_k, expert_v, prefix_mask)
        Per head step: e.g. flow's velocity for the noisy chunk (heads/flow.py).

None holds state between calls or branches on tensor values, so `torch.onnx.export` can trace
them; the sampling loops and any guidance live outside (the heads' `sample`, and their numpy
twins in edgevla.runtime.head_loops).

Attention layout (lerobot's SmolVLA, "cross_attn" mode): in joint layers the expert's queries
attend to [prefix; actions] (prefix keys from the cache, action keys from the expert); in cross
layers they attend only to the prefix, through expert k/v projections applied to the VLM layer's
cached keys/values, with query positions restarting at 0. Prefix image+language tokens attend to
each other but not to the state token (which is why the context can be cached while the state
changes); the state token sees the whole prefix; action tokens are causal among themselves.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from edgevla.model.config import ModelConfig, TextConfig, VisionConfig
from edgevla.model.heads import make_head


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope(x: Tensor, positions: Tensor, max_wavelength: float) -> Tensor:
    """Rotary embedding on x (B, L, H, D) at integer positions (B, L), halves layout, in fp32."""
    half = x.shape[-1] // 2
    exponents = (2.0 / x.shape[-1]) * torch.arange(half, dtype=torch.float32, device=x.device)
    radians = positions[..., None].float() / (max_wavelength**exponents)
    cos, sin = torch.cos(radians)[..., None, :], torch.sin(radians)[..., None, :]
    x1, x2 = x.float().split(half, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Grouped-query attention. q (B,Lq,H,D), k/v (B,Lk,KVH,D), mask (B,Lq,Lk) bool -> (B,Lq,H*D).

    Scores in fp32, masked with the fp32 minimum (a fully masked row becomes uniform, not NaN).
    """
    batch, q_len, heads, head_dim = q.shape
    groups = heads // k.shape[2]
    k = k.repeat_interleave(groups, dim=2)
    v = v.repeat_interleave(groups, dim=2)
    scores = torch.matmul(q.float().transpose(1, 2), k.float().permute(0, 2, 3, 1))
    scores = scores * head_dim**-0.5
    scores = torch.where(mask[:, None], scores, torch.finfo(torch.float32).min)
    probs = scores.softmax(dim=-1).to(v.dtype)
    out = torch.matmul(probs, v.transpose(1, 2))
    return out.transpose(1, 2).reshape(batch, q_len, heads * head_dim)


# --- vision encoder (SigLIP as SmolVLM uses it) ----------------------------------------------


class VisionAttention(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        size = cfg.hidden_size
        self.q_proj, self.k_proj = nn.Linear(size, size), nn.Linear(size, size)
        self.v_proj, self.out_proj = nn.Linear(size, size), nn.Linear(size, size)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, size = x.shape
        shape = (batch, length, self.num_heads, size // self.num_heads)
        q, k, v = (proj(x).view(shape).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, size))


class VisionMLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class VisionLayer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.self_attn = VisionAttention(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = VisionMLP(cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig, resize: int):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size)
        per_side = cfg.image_size // cfg.patch_size
        self.position_embedding = nn.Embedding(per_side**2, cfg.hidden_size)
        # SmolVLM maps a grid of another size onto its trained position table by bucketing
        # fractional coordinates; for the trained size this is simply 0..N-1.
        grid = resize // cfg.patch_size
        boundaries = torch.arange(1 / per_side, 1.0, 1 / per_side)
        coords = torch.arange(grid, dtype=torch.float32) / grid * (1 - 1e-6)
        buckets = torch.bucketize(coords, boundaries, right=True)
        positions = (buckets[:, None] * per_side + buckets[None, :]).flatten()
        self.register_buffer("position_ids", positions, persistent=False)

    def forward(self, pixels: Tensor) -> Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        return patches + self.position_embedding(self.position_ids)


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig, resize: int):
        super().__init__()
        self.embeddings = VisionEmbeddings(cfg, resize)
        self.encoder = nn.Module()  # nested so weight names stay SigLIP's: encoder.layers.N.*
        self.encoder.layers = nn.ModuleList(VisionLayer(cfg) for _ in range(cfg.num_layers))
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: Tensor) -> Tensor:
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


def pixel_shuffle(x: Tensor, scale: int) -> Tensor:
    """(B, S*S, E) patch grid -> (B, S*S/scale^2, E*scale^2), merging scale x scale neighbours
    in SmolVLM's channel order (columns first, then rows)."""
    batch, seq, embed = x.shape
    side = math.isqrt(seq)
    x = x.reshape(batch, side, side // scale, embed * scale)
    x = x.permute(0, 2, 1, 3).reshape(batch, side // scale, side // scale, embed * scale * scale)
    return x.permute(0, 2, 1, 3).reshape(batch, seq // scale**2, embed * scale * scale)


# --- decoder layers (VLM text model and action expert share the Llama layout) ----------------


class DecoderAttention(nn.Module):
    def __init__(self, hidden: int, text: TextConfig, kv_input: int):
        super().__init__()
        self.q_proj = nn.Linear(hidden, text.num_heads * text.head_dim, bias=False)
        self.k_proj = nn.Linear(kv_input, text.num_kv_heads * text.head_dim, bias=False)
        self.v_proj = nn.Linear(kv_input, text.num_kv_heads * text.head_dim, bias=False)
        self.o_proj = nn.Linear(text.num_heads * text.head_dim, hidden, bias=False)


class DecoderMLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Parameters only: the attention wiring spans both stacks and lives in SmolVLANet."""

    def __init__(self, hidden: int, intermediate: int, text: TextConfig, kv_input: int | None = None):
        super().__init__()
        self.input_layernorm = RMSNorm(hidden, text.rms_norm_eps)
        self.self_attn = DecoderAttention(hidden, text, kv_input or hidden)
        self.post_attention_layernorm = RMSNorm(hidden, text.rms_norm_eps)
        self.mlp = DecoderMLP(hidden, intermediate)

    def finish(self, x: Tensor, attention: Tensor) -> Tensor:
        """Residual after attention, then the MLP block."""
        x = x + self.self_attn.o_proj(attention)
        return x + self.mlp(self.post_attention_layernorm(x))


class SmolVLANet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self._cfg = cfg
        text, width = cfg.text, cfg.expert_hidden_size
        self.vision = VisionEncoder(cfg.vision, cfg.resize)
        self.connector = nn.Linear(cfg.vision.hidden_size * cfg.scale_factor**2, text.hidden_size, bias=False)
        self.embed_tokens = nn.Embedding(text.vocab_size, text.hidden_size)
        self.vlm_layers = nn.ModuleList(
            DecoderLayer(text.hidden_size, text.intermediate_size, text) for _ in range(text.num_layers)
        )
        # Carried so lerobot checkpoints round-trip; the action path never uses them.
        self.vlm_norm = RMSNorm(text.hidden_size, text.rms_norm_eps)
        self.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=False)
        self.expert_layers = nn.ModuleList(
            DecoderLayer(
                width, cfg.expert_intermediate_size, text, None if cfg.is_joint_layer(i) else cfg.kv_size
            )
            for i in range(cfg.expert_layers)
        )
        self.expert_norm = RMSNorm(width, text.rms_norm_eps)
        self.state_proj = nn.Linear(cfg.max_state_dim, text.hidden_size)
        # What turns the expert's hidden states into an action chunk (and back, for its inputs):
        # flow matching as in SmolVLA, or another of edgevla.model.heads.
        self.head = make_head(cfg, width)

    @property
    def cfg(self) -> ModelConfig:
        return self._cfg

    @cfg.setter
    def cfg(self, value: ModelConfig) -> None:
        """A config adapted after construction (dataset dims, chunk size, a fitted head) reaches
        the head too, which reads its shapes and fitted ranges from it."""
        self._cfg = value
        if "head" in self._modules:
            self.head.cfg = value

    def fit_head(self, chunks) -> None:
        """Fit the head's data-dependent settings (bins' range, FAST's tokenizer) on normalised
        action chunks (N, chunk, action_dim) of the training data; they become part of the config."""
        changes = self.head.fit(chunks)
        if changes:
            self.cfg = replace(self.cfg, head=replace(self.cfg.head, **changes))

    # --- prefix: System 2 (images + language) and System 1 (the state token) ---------------
    def embed_context(
        self, images: Tensor, image_masks: Tensor, tokens: Tensor, token_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Image and language embeddings (B, C, hidden) and their validity mask (B, C)."""
        batch, slots = images.shape[:2]
        hidden = self.cfg.text.hidden_size
        pixels = images.reshape(batch * slots, *images.shape[2:]).to(self.connector.weight.dtype)
        image_tokens = self.connector(pixel_shuffle(self.vision(pixels), self.cfg.scale_factor))
        per_image = image_tokens.shape[1]
        image_tokens = image_tokens.reshape(batch, slots * per_image, hidden) * math.sqrt(hidden)
        image_valid = image_masks[:, :, None].expand(batch, slots, per_image).reshape(batch, -1)
        words = self.embed_tokens(tokens) * math.sqrt(hidden)
        return torch.cat([image_tokens, words], dim=1), torch.cat([image_valid, token_mask.bool()], dim=1)

    def _qkv(self, layer: DecoderLayer, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A VLM layer's rotated queries and keys and its values for hidden states x (B, L, hidden)."""
        text, wavelength = self.cfg.text, self.cfg.rope_max_wavelength
        batch, length, _ = x.shape
        h = layer.input_layernorm(x)
        q = layer.self_attn.q_proj(h).view(batch, length, text.num_heads, text.head_dim)
        k = layer.self_attn.k_proj(h).view(batch, length, text.num_kv_heads, text.head_dim)
        v = layer.self_attn.v_proj(h).view(batch, length, text.num_kv_heads, text.head_dim)
        return rope(q, positions, wavelength), rope(k, positions, wavelength), v

    def run_context(
        self, images: Tensor, image_masks: Tensor, tokens: Tensor, token_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`encode_context`, plus the hidden states (B, C, hidden) the last VLM layer's keys and
        values are computed from: the deepest prefix features the expert reads (what grounding
        pretraining teaches, edgevla.train.grounding)."""
        x, valid = self.embed_context(images, image_masks, tokens, token_mask)
        mask = valid[:, None, :] & valid[:, :, None]
        positions = torch.cumsum(valid.long(), dim=1) - 1
        keys, values = [], []
        for index, layer in enumerate(self.vlm_layers):
            q, k, v = self._qkv(layer, x, positions)
            keys.append(k)
            values.append(v)
            if index < len(self.vlm_layers) - 1:  # the last layer's output feeds nothing
                x = layer.finish(x, attend(q, k, v, mask))
        return torch.stack(keys), torch.stack(values), valid, x

    def encode_context(
        self, images: Tensor, image_masks: Tensor, tokens: Tensor, token_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """System 2. images (B, slots, 3, S, S) in [-1, 1]; image_masks (B, slots) bool; tokens (B, T)
        int64; token_mask (B, T) bool. Returns the keys and values of every VLM layer for the image
        and language tokens, context_k/context_v (layers, B, C, kv_heads, head_dim), and
        context_mask (B, C) bool. They never see the state (SmolVLA's mask keeps the state token
        out of their view), so they stay exact while the arm moves."""
        keys, values, valid, _ = self.run_context(images, image_masks, tokens, token_mask)
        return keys, values, valid

    def encode_state(
        self, state: Tensor, context_k: Tensor, context_v: Tensor, context_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """System 1, once per chunk: the state token (B, max_state_dim, normalised) through the VLM
        layers against the cached context. Returns the whole prefix cache, prefix_k/prefix_v
        (layers, B, P = C + 1, kv_heads, head_dim) and prefix_mask (B, P): what one pass over
        [images; language; state] gives."""
        x = self.state_proj(state.to(self.state_proj.weight.dtype))[:, None]
        batch = x.shape[0]
        positions = context_mask.long().sum(dim=1, keepdim=True)  # right after the valid context
        valid = torch.cat([context_mask, torch.ones(batch, 1, dtype=torch.bool, device=x.device)], dim=1)
        keys, values = [], []
        for index, layer in enumerate(self.vlm_layers):
            q, k, v = self._qkv(layer, x, positions)
            k = torch.cat([context_k[index].to(k.dtype), k], dim=1)
            v = torch.cat([context_v[index].to(v.dtype), v], dim=1)
            keys.append(k)
            values.append(v)
            if index < len(self.vlm_layers) - 1:
                x = layer.finish(x, attend(q, k, v, valid[:, None, :]))
        return torch.stack(keys), torch.stack(values), valid

    def encode_prefix(
        self, images: Tensor, image_masks: Tensor, tokens: Tensor, token_mask: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Both systems at once: prefix_k, prefix_v (layers, B, P, kv_heads, head_dim), prefix_mask (B, P)."""
        return self.encode_state(state, *self.encode_context(images, image_masks, tokens, token_mask))

    # --- expert trunk (shared by every action head) -------------------------------------------
    def expert_cache(self, prefix_k: Tensor, prefix_v: Tensor) -> tuple[Tensor, Tensor]:
        """What each expert layer attends to in the prefix, (expert_layers, B, P, kv_heads,
        head_dim) each: the VLM layer's cache in joint layers, the expert's own k/v projections of
        it in cross layers. Once per chunk, not once per head step."""
        cfg, text = self.cfg, self.cfg.text
        dtype = self.expert_norm.weight.dtype  # the expert's compute dtype (weights may be int8)
        keys, values = [], []
        for vlm_index in range(text.num_layers):
            expert_index = cfg.expert_index(vlm_index)
            if expert_index is None:
                continue
            k, v = prefix_k[vlm_index].to(dtype), prefix_v[vlm_index].to(dtype)
            if not cfg.is_joint_layer(vlm_index):
                attn = self.expert_layers[expert_index].self_attn
                k = attn.k_proj(k.flatten(2)).view_as(k)
                v = attn.v_proj(v.flatten(2)).view_as(v)
            keys.append(k)
            values.append(v)
        return torch.stack(keys), torch.stack(values)

    def run_expert(self, x: Tensor, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor) -> Tensor:
        """The expert over L suffix tokens x (B, L, width), causal among themselves, against the
        prefix; returns the normalised hidden states (B, L, width) a head reads its output from.
        Joint layers continue the prefix's positions and attend to [prefix; suffix]; cross layers
        attend to the prefix only, with query positions restarting at 0."""
        cfg, text = self.cfg, self.cfg.text
        batch, length, _ = x.shape
        prefix_len = prefix_mask.shape[1]
        steps = torch.arange(length, device=x.device)[None, :].expand(batch, length)
        joint_positions = prefix_mask.long().sum(dim=1, keepdim=True) + steps
        prefix_visible = prefix_mask[:, None, :].expand(batch, length, prefix_len)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        joint_mask = torch.cat([prefix_visible, causal[None].expand(batch, length, length)], dim=2)
        wavelength = cfg.rope_max_wavelength
        for expert_index, layer in enumerate(self.expert_layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(batch, length, text.num_heads, text.head_dim)
            cached_k, cached_v = expert_k[expert_index].to(x.dtype), expert_v[expert_index].to(x.dtype)
            if cfg.is_joint_layer(expert_index * cfg.vlm_layers_per_expert_layer):
                k = attn.k_proj(h).view(batch, length, text.num_kv_heads, text.head_dim)
                v = attn.v_proj(h).view(batch, length, text.num_kv_heads, text.head_dim)
                q, k = rope(q, joint_positions, wavelength), rope(k, joint_positions, wavelength)
                out = attend(q, torch.cat([cached_k, k], dim=1), torch.cat([cached_v, v], dim=1), joint_mask)
            else:
                out = attend(rope(q, steps, wavelength), cached_k, cached_v, prefix_visible)
            x = layer.finish(x, out)
        return self.expert_norm(x)

    def joint_expert_layers(self) -> list[int]:
        """The expert layers that attend to the suffix tokens too (and so keep a decode cache)."""
        cfg = self.cfg
        return [
            i for i in range(cfg.expert_layers) if cfg.is_joint_layer(i * cfg.vlm_layers_per_expert_layer)
        ]

    def decode_expert(
        self,
        x: Tensor,
        position: Tensor,
        suffix_k: Tensor,
        suffix_v: Tensor,
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`run_expert` one suffix token at a time (autoregressive heads): x (B, 1, width) is the
        token at suffix position `position` (B,) int64; suffix_k/suffix_v (joint layers, B, S,
        kv_heads, head_dim) hold the rotated keys/values of the tokens before it (entries at and
        after `position` are ignored). Returns its hidden state (B, 1, width) and the caches with
        this token written at `position`. Token i's output equals run_expert's over the first
        i + 1 tokens (causal), which is what trains it."""
        cfg, text = self.cfg, self.cfg.text
        batch = x.shape[0]
        length = suffix_k.shape[2]
        slots = torch.arange(length, device=x.device)[None, :]
        here = (slots == position[:, None])[:, :, None, None]  # (B, S, 1, 1): where this token goes
        seen = torch.cat([prefix_mask, slots <= position[:, None]], dim=1)[:, None, :]  # (B, 1, P + S)
        joint_positions = prefix_mask.long().sum(dim=1, keepdim=True) + position[:, None]
        wavelength = cfg.rope_max_wavelength
        keys, values = [], []
        joint = self.joint_expert_layers()
        for expert_index, layer in enumerate(self.expert_layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(batch, 1, text.num_heads, text.head_dim)
            cached_k, cached_v = expert_k[expert_index].to(x.dtype), expert_v[expert_index].to(x.dtype)
            if expert_index in joint:
                slot = joint.index(expert_index)
                k = attn.k_proj(h).view(batch, 1, text.num_kv_heads, text.head_dim)
                v = attn.v_proj(h).view(batch, 1, text.num_kv_heads, text.head_dim)
                q, k = rope(q, joint_positions, wavelength), rope(k, joint_positions, wavelength)
                layer_k = torch.where(here, k.to(suffix_k.dtype), suffix_k[slot])
                layer_v = torch.where(here, v.to(suffix_v.dtype), suffix_v[slot])
                keys.append(layer_k)
                values.append(layer_v)
                all_k = torch.cat([cached_k, layer_k.to(x.dtype)], dim=1)
                all_v = torch.cat([cached_v, layer_v.to(x.dtype)], dim=1)
                out = attend(q, all_k, all_v, seen)
            else:
                out = attend(
                    rope(q, position[:, None], wavelength), cached_k, cached_v, prefix_mask[:, None, :]
                )
            x = layer.finish(x, out)
        if not keys:  # no joint layer: nothing attends to earlier tokens
            return self.expert_norm(x), suffix_k, suffix_v
        return self.expert_norm(x), torch.stack(keys), torch.stack(values)

    # --- what training calls ----------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor], **head_args: Tensor) -> Tensor:
        """The head's training loss on a preprocessed batch (see `ActionHead.loss`)."""
        prefix_k, prefix_v, prefix_mask = self.encode_prefix(
            batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"], batch["state"]
        )
        expert_k, expert_v = self.expert_cache(prefix_k, prefix_v)
        return self.head.loss(self, batch, expert_k, expert_v, prefix_mask, **head_args)
