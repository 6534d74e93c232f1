"""`open_policy`: a policy source and a transport in, a ready `Policy` out."""

from __future__ import annotations

import sys
from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.hosting.sources import is_remote, local_path, open_local, policy_bytes
from edgevla.policy_io import Expectation, Policy, check_fit
from edgevla.runtime.session import LinkPolicy
from edgevla.runtime.wire import Refused
from edgevla.runtime.workers import SMALL_POLICY_BYTES, ProcessLink, RemotePolicy, threads_env, worker_threads

TRANSPORTS = ("thread", "process", "remote")


def worker_argv(
    source: str,
    threads: int,
    device: str = "cpu",
    dtype: str = "fp32",
    vlm_dir: str | Path | None = None,
    providers: list[str] | None = None,
) -> list[str]:
    """The command line that starts a worker process (worker_process.py) for `source`."""
    argv = [
        sys.executable,
        "-m",
        "edgevla.hosting.worker_process",
        source,
        "--device",
        device,
        "--dtype",
        dtype,
    ]
    if vlm_dir is not None:
        argv += ["--vlm-dir", str(vlm_dir)]
    if providers:
        argv += ["--providers", ",".join(providers)]
    return [*argv, "--threads", str(threads)]


class ProcessPolicy(LinkPolicy):
    """The policy at `source` served by a child process over a pipe, respawned with backoff."""

    def __init__(self, source: str, expect: Expectation, threads: int | None = None, **loading):
        count = worker_threads(threads, policy_bytes(source))
        argv, env = worker_argv(source, count, **loading), threads_env(count)
        super().__init__(lambda: ProcessLink(argv, env), expect, describe="worker process")


def local_threads(threads: int | None, source: str) -> int:
    """ONNX Runtime threads of a policy in this process: `threads`, else one for a small policy
    (see runtime.workers.SMALL_POLICY_BYTES), else 0 (its default: one per core)."""
    if threads:
        return threads
    size = policy_bytes(source)
    return 1 if size is not None and size < SMALL_POLICY_BYTES else 0


def open_policy(
    source: str | Path,
    *,
    transport: str = "thread",
    expect: Expectation | None = None,
    token: str | None = None,
    jpeg: bool = False,
    threads: int | None = None,
    device: str = "cpu",
    dtype: str = "fp32",
    vlm_dir: str | Path | None = None,
    providers: list[str] | None = None,
) -> Policy:
    """The Policy for `source`, served over `transport`; close it when done.

    source     a replay `.npz`, an exported artifact directory, a checkpoint directory (edgevla,
               lerobot or bitsandbytes-quantized), or `ws://HOST:PORT` of `edgevla serve`;
    transport  "thread": loaded in this process; "process": loaded in a child process that is
               respawned when it dies, so the model never competes with the control loop for
               the GIL; "remote": the server at a ws:// source (a ws:// source is always remote);
    expect     what the robot sends and needs back; a policy that does not fit is refused
               (`Refused`). Required by "process" and "remote", which send it in their handshake;
               None on "thread" skips the check (serving, predicting, comparing);
    token, jpeg  the server's shared secret; JPEG-compress images on the way (remote only);
    threads    compute threads: ONNX Runtime's intra-op threads in this process (None: one for a
               small policy, else its default), or a worker process's whole budget (None: one
               for a small policy, else all cores but one);
    device, dtype, vlm_dir, providers  how a local source loads (see `sources.open_local`).

    An ONNX artifact or a replay opens without importing torch on any transport.
    """
    source = str(source)
    if transport not in TRANSPORTS:
        raise EdgevlaError(f"unknown transport '{transport}': choose one of {', '.join(TRANSPORTS)}")
    if is_remote(source):
        if expect is None:
            raise EdgevlaError(f"'{source}' is a server address, not a local policy")
        return RemotePolicy(source, expect, token=token, jpeg=jpeg)
    if transport == "remote":
        raise EdgevlaError(f"--worker remote needs --policy ws://HOST:PORT, got '{source}'")
    loading = {"device": device, "dtype": dtype, "vlm_dir": vlm_dir, "providers": providers}
    if transport == "process":
        if expect is None:
            raise ValueError("a worker process needs the robot's Expectation: its handshake sends it")
        local_path(source)
        return ProcessPolicy(source, expect, threads, **loading)
    policy = open_local(source, threads=local_threads(threads, source), **loading)
    problem = None if expect is None else check_fit(policy.spec, expect)
    if problem:
        policy.close()
        raise Refused(problem)
    return policy
