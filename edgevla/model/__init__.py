"""The SmolVLA-class policy in torch (needs the `model` extra).

config.py              ModelConfig dataclasses and presets (tiny, small, smolvla-450m)
network.py             SmolVLANet: encode_context / encode_state / expert_cache, explicit tensors for export
heads/                 action heads on the expert trunk (flow, ...), each with its step graph, loss, sampler
freezing.py            which parameters train (freezing policies)
policy.py              TorchPolicy: the Policy protocol (edgevla.policy_io) on top of the network
checkpoint.py          edgevla checkpoint directories (read/write), any checkpoint by its contents
lerobot_checkpoint.py  lerobot SmolVLA directories translated (config, weight names, stats)
checkpoint_files.py    JSON, safetensors and strict weight loading with one clear error each
"""
