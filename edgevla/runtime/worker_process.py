"""Entry point of a local worker process: `python -m edgevla.runtime.worker_process SOURCE [--threads N]`.

Serves one policy to its parent over stdin/stdout with the wire protocol (framed msgpack, never
pickle). Stdout is reserved for frames: anything the policy prints goes to stderr instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from edgevla.errors import EdgevlaError
from edgevla.runtime.link import PipeLink
from edgevla.runtime.loading import load_policy
from edgevla.runtime.session import serve_session
from edgevla.runtime.wire import ErrorMessage, encode


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="worker: %(message)s")
    frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # a stray print() must not corrupt the frame stream
    link = PipeLink(sys.stdin.buffer, frames_out)
    parser = argparse.ArgumentParser(prog="edgevla.runtime.worker_process")
    parser.add_argument("source")
    parser.add_argument("--threads", type=int, default=0, help="compute threads (0: the library's default)")
    args = parser.parse_args(argv)
    try:
        policy = load_policy(args.source, threads=args.threads)
    except EdgevlaError as err:  # tell the parent why instead of dying silently
        link.recv()
        link.send(encode(ErrorMessage(f"cannot load the policy: {err}")))
        return 2
    serve_session(link, policy, peer="parent", log_sent_errors=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
