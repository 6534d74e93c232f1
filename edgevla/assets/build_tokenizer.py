"""Build the small byte-level BPE tokenizer that the tiny/small presets ship with.

    python -m edgevla.assets.build_tokenizer   # rewrites edgevla/assets/tiny_bpe_tokenizer.json

Presets are trained from scratch, so they need a tokenizer but not SmolVLM2's 49k vocabulary:
1024 tokens learnt from robot-manipulation instructions keep the embedding table small. Byte-level
BPE never fails on unseen words (it falls back to bytes). Deterministic for a given `tokenizers`.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent / "tiny_bpe_tokenizer.json"
VOCAB_SIZE = 1024
SPECIAL = ["<|endoftext|>", "<fake_token_around_image>", "<global-img>", "<image>", "<end_of_utterance>"]
VERBS = [
    "pick up",
    "place",
    "put",
    "push",
    "pull",
    "move",
    "stack",
    "open",
    "close",
    "grasp",
    "lift",
    "rotate",
    "slide",
    "drop",
    "insert",
    "wipe",
    "pour",
    "fold",
    "press",
    "turn",
    "reach",
    "sort",
]
OBJECTS = [
    "cube",
    "block",
    "cup",
    "bowl",
    "bottle",
    "sponge",
    "pen",
    "lid",
    "drawer",
    "door",
    "box",
    "ball",
    "towel",
    "marker",
    "plate",
    "spoon",
    "lego brick",
    "screw",
    "can",
    "bag",
    "button",
]
COLOURS = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple", "pink", "grey"]
PLACES = [
    "in the bowl",
    "on the plate",
    "into the box",
    "to the left",
    "to the right",
    "on top of it",
    "next to the cup",
    "onto the table",
    "in the bin",
    "behind the block",
    "at the corner",
]


def corpus() -> list[str]:
    lines = []
    for i, verb in enumerate(VERBS):
        for j, obj in enumerate(OBJECTS):
            colour, place = COLOURS[(i + j) % len(COLOURS)], PLACES[(i * 3 + j) % len(PLACES)]
            lines.append(f"{verb} the {colour} {obj} {place}\n")
            lines.append(f"{verb.capitalize()} the {obj} and then {VERBS[(i + 5) % len(VERBS)]} it slowly.\n")
    return lines


def build() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    return tokenizer


if __name__ == "__main__":
    tok = build()
    tok.save(str(OUT))
    print(f"{OUT}: {tok.get_vocab_size()} tokens")
