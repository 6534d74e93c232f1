"""Which parameters train: the freezing policies of `edgevla train --set mode=...`."""

from __future__ import annotations

from edgevla.errors import EdgevlaError
from edgevla.model.network import SmolVLANet

FREEZING = ("expert", "vision-frozen", "full")


def apply_freezing(model: SmolVLANet, policy: str = "expert") -> int:
    """Set requires_grad by policy; returns the number of trainable parameters.

    expert         the VLM (vision, connector, embeddings, text layers) is frozen; the expert, the
                   state projection and the action head train (SmolVLA's default fine-tune).
    vision-frozen  also train the VLM text layers and the connector; the vision encoder stays frozen.
    full           everything trains.
    In every policy the weights no loss reaches stay frozen: the LM head, the VLM's final norm
    and the parts of the last VLM layer after its keys/values.
    """
    if policy not in FREEZING:
        raise EdgevlaError(f"unknown freezing policy '{policy}': choose one of {', '.join(FREEZING)}")
    vlm_parts = [model.vision, model.connector, model.embed_tokens, model.vlm_layers]
    frozen = {"expert": vlm_parts, "vision-frozen": [model.vision], "full": []}[policy]
    last = model.vlm_layers[-1]
    unreachable = [model.lm_head, model.vlm_norm, last.self_attn.q_proj, last.self_attn.o_proj]
    unreachable += [last.post_attention_layernorm, last.mlp]
    for param in model.parameters():
        param.requires_grad = True
    for module in frozen + unreachable:
        for param in module.parameters():
            param.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
