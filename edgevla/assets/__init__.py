"""Data files shipped with edgevla (the presets' tokenizer)."""
