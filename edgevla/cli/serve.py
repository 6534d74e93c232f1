"""`edgevla serve`: serve one policy over websockets to robots running `edgevla run --policy ws://...`."""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time

from edgevla.cli.args import add_steps
from edgevla.errors import EdgevlaError
from edgevla.runtime.admission import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_ADDRESS, ConnectionLimits

MAX_MESSAGE_MB = (0.1, 1024.0)
MAX_TOKEN_CHARS = 1024  # the longest token a hello carries
MAX_HELLO_TIMEOUT_S = 300.0
MAX_CONNECTIONS = 65536


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint, exported artifact or replay .npz")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default localhost; 0.0.0.0 exposes it: use --token)",
    )
    parser.add_argument("--port", type=int, default=8765)
    add_steps(parser)
    parser.add_argument("--token", help="shared secret clients must present (strongly advised off localhost)")
    parser.add_argument(
        "--max-message-mb",
        type=float,
        default=16.0,
        help="largest message from a client whose hello was accepted (default 16)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help=f"connections held at once, from anyone (default {DEFAULT_MAX_CONNECTIONS}); more are refused",
    )
    parser.add_argument(
        "--max-connections-per-ip",
        type=int,
        default=DEFAULT_MAX_PER_ADDRESS,
        help=f"connections held at once from one address (default {DEFAULT_MAX_PER_ADDRESS})",
    )
    parser.add_argument(
        "--hello-timeout",
        type=float,
        default=ConnectionLimits.hello_timeout_s,
        help="seconds a new connection has to be accepted (upgrade and hello), else it is dropped "
        "(default 10)",
    )
    parser.set_defaults(handler=run)


def limits_from_args(args: argparse.Namespace) -> ConnectionLimits:
    """The serve flags checked, each with one line naming it and what it accepts."""
    if not 0 <= args.port <= 65535:
        raise EdgevlaError(f"--port must be 0-65535 (0: any free port), got {args.port}")
    if not args.host.strip():
        raise EdgevlaError("--host must name an address to bind (127.0.0.1, 0.0.0.0, a hostname)")
    if args.token is not None and not 0 < len(args.token) <= MAX_TOKEN_CHARS:
        raise EdgevlaError(f"--token must be 1 to {MAX_TOKEN_CHARS} characters")
    low, high = MAX_MESSAGE_MB
    if not (math.isfinite(args.max_message_mb) and low <= args.max_message_mb <= high):
        raise EdgevlaError(
            f"--max-message-mb must be a number from {low} to {high:.0f}, got {args.max_message_mb}"
        )
    if not 1 <= args.max_connections <= MAX_CONNECTIONS:
        raise EdgevlaError(f"--max-connections must be 1 to {MAX_CONNECTIONS}, got {args.max_connections}")
    if not 1 <= args.max_connections_per_ip <= args.max_connections:
        raise EdgevlaError(
            f"--max-connections-per-ip must be 1 to --max-connections ({args.max_connections}), "
            f"got {args.max_connections_per_ip}"
        )
    if not (math.isfinite(args.hello_timeout) and 0 < args.hello_timeout <= MAX_HELLO_TIMEOUT_S):
        raise EdgevlaError(
            f"--hello-timeout must be seconds above 0 and at most {MAX_HELLO_TIMEOUT_S:.0f}, got {args.hello_timeout}"
        )
    return ConnectionLimits(args.max_connections, args.max_connections_per_ip, args.hello_timeout)


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C or SIGTERM, which end it as interrupted (exit 130)."""
    from edgevla.hosting import open_policy
    from edgevla.runtime.server import PolicyServer
    from edgevla.signals import stop_on_signals

    limits = limits_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    interrupts = stop_on_signals()
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        logging.warning("serving on %s without --token: anyone on the network can use this policy", args.host)
    policy = open_policy(args.policy, num_steps=args.steps)
    try:
        server = PolicyServer(
            policy,
            args.host,
            args.port,
            args.token,
            max_bytes=int(args.max_message_mb * 1024 * 1024),
            limits=limits,
        )
    except OSError as err:
        raise EdgevlaError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    spec = policy.spec
    print(
        f"serving '{spec.name}' (state {spec.state_dim}, actions {spec.chunk_size}x{spec.action_dim}, "
        f"cameras: {', '.join(c.name for c in spec.cameras) or 'none'}) on {server.url}",
        flush=True,
    )
    # The accept loop runs in its own thread and the main thread only waits, so a Ctrl-C or
    # SIGTERM is noted between polls instead of raised inside the server's locks, where it could
    # hang the shutdown that follows.
    server.start()
    try:
        with interrupts.deferred():
            while not interrupts.stop_requested and server.serving:
                time.sleep(0.2)
        reason = server.stop_reason or "its accept loop ended without an error"
        raise EdgevlaError(f"the server on {server.url} stopped: {reason}")
    finally:
        server.close()
