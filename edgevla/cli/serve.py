"""`edgevla serve`: serve one policy over websockets to robots running `edgevla run --policy ws://...`."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from edgevla.errors import EdgevlaError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint, exported artifact or replay .npz")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default localhost; 0.0.0.0 exposes it: use --token)",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", help="shared secret clients must present (strongly advised off localhost)")
    parser.add_argument("--max-message-mb", type=float, default=16.0, help="largest accepted message")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C or SIGTERM, which end it as interrupted (exit 130)."""
    from edgevla.hosting import open_policy
    from edgevla.runtime.server import PolicyServer
    from edgevla.signals import stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    interrupts = stop_on_signals()
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        logging.warning("serving on %s without --token: anyone on the network can use this policy", args.host)
    policy = open_policy(args.policy)
    try:
        server = PolicyServer(
            policy, args.host, args.port, args.token, max_bytes=int(args.max_message_mb * 1024 * 1024)
        )
    except OSError as err:
        raise EdgevlaError(f"cannot listen on {args.host}:{args.port}: {err.strerror}") from None
    spec = policy.spec
    print(
        f"serving '{spec.name}' (state {spec.state_dim}, actions {spec.chunk_size}x{spec.action_dim}, "
        f"cameras: {', '.join(c.name for c in spec.cameras) or 'none'}) on {server.url}",
        flush=True,
    )
    # The websockets loop runs in its own thread and the main thread only waits, so a Ctrl-C or
    # SIGTERM is noted between polls instead of raised inside the server's locks, where it could
    # hang the shutdown that follows.
    server.start()
    try:
        with interrupts.deferred():
            while not interrupts.stop_requested and server.serving:
                time.sleep(0.2)
        raise EdgevlaError(f"the server on {server.url} stopped by itself; the log above says why")
    finally:
        server.close()
