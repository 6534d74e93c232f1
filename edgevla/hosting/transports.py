"""`open_policy`: a policy source and a transport in, a ready `Policy` out; `open_systems`: the
same for the dual system, both systems of a policy whose prefix splits."""

from __future__ import annotations

import sys
from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.hosting.sources import is_remote, local_path, open_local, policy_bytes
from edgevla.policy_io import DualPolicy, Expectation, Policy, check_fit
from edgevla.runtime.dual import LocalSystems, Systems, not_dual
from edgevla.runtime.dual_session import LinkSystems
from edgevla.runtime.session import LinkPolicy
from edgevla.runtime.wire import Refused
from edgevla.runtime.workers import (
    SMALL_POLICY_BYTES,
    ProcessLink,
    RemotePolicy,
    connect_websocket,
    threads_env,
    worker_threads,
)

TRANSPORTS = ("thread", "process", "remote")


def worker_argv(
    source: str,
    threads: int,
    device: str = "cpu",
    dtype: str = "fp32",
    vlm_dir: str | Path | None = None,
    providers: list[str] | None = None,
    num_steps: int | None = None,
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
    if num_steps is not None:
        argv += ["--steps", str(num_steps)]
    return [*argv, "--threads", str(threads)]


class ProcessPolicy(LinkPolicy):
    """The policy at `source` served by a child process over a pipe, respawned with backoff."""

    def __init__(self, source: str, expect: Expectation, threads: int | None = None, **loading):
        count = worker_threads(threads, policy_bytes(source))
        argv, env = worker_argv(source, count, **loading), threads_env(count)
        super().__init__(lambda: ProcessLink(argv, env), expect, describe="worker process")


class ProcessSystems(LinkSystems):
    """Both systems of the policy at `source` in a child process (respawned with backoff): System 2
    and System 1 run in two threads there, sharing its cached context."""

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
    num_steps: int | None = None,
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
    device, dtype, vlm_dir, providers, num_steps  how a local source loads (`sources.open_local`;
               a server chooses its own steps: `edgevla serve --steps`).

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
    if num_steps is not None and is_remote(source):
        raise EdgevlaError(
            "--steps with a remote policy: the server samples; start `edgevla serve --steps N`"
        )
    loading = {
        "device": device,
        "dtype": dtype,
        "vlm_dir": vlm_dir,
        "providers": providers,
        "num_steps": num_steps,
    }
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


def open_systems(
    source: str | Path,
    *,
    transport: str = "thread",
    expect: Expectation | None = None,
    token: str | None = None,
    jpeg: bool = False,
    threads: int | None = None,
    **loading,
) -> Systems:
    """The dual system of `source`: System 2 and System 1 of a policy whose prefix splits (an
    exported artifact, a checkpoint), on `transport`, with the arguments of `open_policy`. Remote:
    both systems run on the server, which gets the camera frames only at System 2's pace."""
    source = str(source)
    if transport not in TRANSPORTS:
        raise EdgevlaError(f"unknown transport '{transport}': choose one of {', '.join(TRANSPORTS)}")
    if is_remote(source) or transport == "remote":
        if not is_remote(source):
            raise EdgevlaError(f"--worker remote needs --policy ws://HOST:PORT, got '{source}'")
        if expect is None:
            raise EdgevlaError(f"'{source}' is a server address, not a local policy")
        return LinkSystems(lambda: connect_websocket(source), expect, token=token, jpeg=jpeg, describe=source)
    if transport == "process":
        if expect is None:
            raise ValueError("a worker process needs the robot's Expectation: its handshake sends it")
        local_path(source)
        return ProcessSystems(source, expect, threads, **loading)
    policy = open_policy(source, transport="thread", expect=expect, threads=threads, **loading)
    if not isinstance(policy, DualPolicy):
        policy.close()
        raise Refused(not_dual(policy.spec.name))
    return LocalSystems(policy)
