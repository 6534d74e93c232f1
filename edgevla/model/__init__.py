"""The SmolVLA-class policy in torch (needs the `model` extra).

config.py      ModelConfig dataclasses and presets (tiny, small, smolvla-450m)
network.py     SmolVLANet: encode_prefix / denoise_step, explicit tensors for export
flow.py        Euler sampler with RTC guidance, flow-matching loss, freezing policies
policy.py      TorchPolicy: the runtime Policy protocol on top of the network
checkpoint.py  lerobot and edgevla checkpoint directories
"""
