"""Fine-tuning and training from scratch (needs the `train` extra): see docs/TRAINING.md.

recipe.py   the YAML recipe schema, validated into dataclasses (errors name file and field)
data.py     dataset frames -> preprocessed samples (same numpy preprocessing as inference)
prepare.py  base network, LoRA (PEFT) or freezing, gradient checkpointing, the loss module
state.py    resumable checkpoints in safetensors + JSON (no pickle)
loop.py     the training loop (accelerate), metrics JSONL, final adapter + merged policy
dryrun.py   parameter counts, batch shapes, peak memory (measured on GPU, estimated on CPU)
"""
