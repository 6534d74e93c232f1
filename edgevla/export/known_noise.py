"""Third-party log lines that are known noise on a successful export or quantization.

Each is dropped only by its logger and its text, only around the call that emits it, so any
other message of the same library still reaches the user.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

# torch.onnx's dynamo exporter names every torchvision op it cannot register when torchvision is
# absent (4 lines per graph); SmolVLA uses none of them.
TORCHVISION_OPS = ("torch.onnx._internal.exporter._registration", "torchvision is not installed")
# onnxruntime.quantization advises its shape-inference pre-pass on the root logger (1-2 lines per
# graph); our graphs come from the dynamo exporter with shapes already inferred.
ORT_PREPROCESS_HINT = ("", "pre-processing before quantization")


class _Drop(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@contextmanager
def dropped(noise: tuple[str, str]) -> Iterator[None]:
    """Inside the block, records of logger `noise[0]` whose message contains `noise[1]` are dropped."""
    logger_name, text = noise
    logger, drop = logging.getLogger(logger_name), _Drop(text)
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
