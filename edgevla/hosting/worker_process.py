"""Entry point of a local worker process:
`python -m edgevla.hosting.worker_process SOURCE [--device D] [--dtype T] [--vlm-dir DIR]
[--providers P,...] [--steps N] --threads N`.

Started by `transports.ProcessPolicy`; no module of the package imports it, so `-m` runs it
without runpy's warning. Serves one policy to its parent over stdin/stdout with the wire protocol
(framed msgpack, never pickle). Stdout is reserved for frames: anything the policy prints goes to
stderr instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from edgevla.errors import EdgevlaError
from edgevla.hosting.sources import open_local
from edgevla.runtime.link import PipeLink
from edgevla.runtime.session import serve_session
from edgevla.runtime.wire import ErrorMessage, encode


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="worker: %(message)s")
    frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # a stray print() must not corrupt the frame stream
    link = PipeLink(sys.stdin.buffer, frames_out)
    parser = argparse.ArgumentParser(prog="edgevla.hosting.worker_process")
    parser.add_argument("source")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--vlm-dir")
    parser.add_argument("--providers", help="comma-separated ONNX Runtime providers")
    parser.add_argument("--threads", type=int, default=0, help="compute threads (0: the library's default)")
    parser.add_argument("--steps", type=int, help="sampling steps of a flow or diffusion head")
    args = parser.parse_args(argv)
    try:
        policy = open_local(
            args.source,
            device=args.device,
            dtype=args.dtype,
            vlm_dir=args.vlm_dir,
            providers=args.providers.split(",") if args.providers else None,
            threads=args.threads,
            num_steps=args.steps,
        )
    except EdgevlaError as err:  # tell the parent why instead of dying silently
        link.recv()
        link.send(encode(ErrorMessage(f"cannot load the policy: {err}")))
        return 2
    serve_session(link, policy, peer="parent", log_sent_errors=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
