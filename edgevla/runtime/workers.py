"""Where inference runs, behind one interface: `PolicyWorker` over any Policy.

The worker runs one request at a time in its own thread; the control loop only ever calls the
non-blocking `submit` and `poll`. Its Policy is in this process, or at the end of a link:
  ProcessLink   the pipe to a child process serving a policy with the wire protocol, so a
                CPU-heavy model and its GIL never disturb the control loop (the child's command
                line comes from the caller: edgevla.hosting starts its worker process);
  RemotePolicy  a websocket to `edgevla serve`, reconnected with backoff when it drops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import TIMESTAMP_KEY, Expectation, Guidance, Observation, Policy
from edgevla.runtime.dual import Acted, Systems
from edgevla.runtime.link import LinkClosed, PipeLink, WebSocketLink
from edgevla.runtime.session import LinkPolicy
from edgevla.runtime.wire import MAX_MESSAGE_BYTES, Refused

log = logging.getLogger("edgevla.runtime")


# A policy with fewer weight bytes than this runs on one thread: its operators are too small to
# split, so a second thread only adds the pool's hand-offs (measured, docs/PERFORMANCE.md: the
# demo policy, 12 MB, 20 ms per chunk on 1 thread, 86 ms on 2, 2-core box under load).
SMALL_POLICY_BYTES = 64 * 2**20


def worker_threads(requested: int | None = None, policy_bytes: int | None = None) -> int:
    """Compute threads for a worker process: `requested`, else the user's OMP_NUM_THREADS, else one
    for a small policy (`policy_bytes` of weights below SMALL_POLICY_BYTES), else all cores but
    one, which stays with the control loop.

    Math libraries spin a thread per core by default; beside a control loop on a small machine
    that oversubscribes the CPU (measured: tiny policy 60 ms with 1 thread, >700 ms with 2 on a
    busy 2-core box)."""
    if requested:
        return requested
    user_choice = os.environ.get("OMP_NUM_THREADS", "")
    if user_choice.isdigit():
        return int(user_choice)
    if policy_bytes is not None and policy_bytes < SMALL_POLICY_BYTES:
        return 1
    return max(1, (os.cpu_count() or 2) - 1)


def threads_env(count: int) -> dict[str, str]:
    """This process's environment with torch's and BLAS's thread pools held to `count` (ONNX
    Runtime does not read these: a worker passes the count to it itself)."""
    pools = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {**os.environ, **dict.fromkeys(pools, str(count))}


class ProcessLink(PipeLink):
    """The pipe to a child process that speaks the wire protocol on its stdin/stdout; closing the
    link ends the process."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        # own session: Ctrl-C in the terminal reaches only the parent, which then closes us
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,
            env=env,
        )
        super().__init__(self.proc.stdout, self.proc.stdin)

    def close(self) -> None:
        super().close()
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                os.kill(
                    self.proc.pid, signal.SIGCONT
                )  # a stopped (hung) worker only acts on it once continued
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def connect_websocket(url: str, max_bytes: int = MAX_MESSAGE_BYTES) -> WebSocketLink:
    from websockets.sync.client import connect

    try:
        # connect() is a context manager (websockets >= 17 warns otherwise); the link's close()
        # ends the connection, so nothing else is left for the stack to clean up
        stack = contextlib.ExitStack()
        return WebSocketLink(
            stack.enter_context(connect(url, max_size=max_bytes, open_timeout=5, compression=None))
        )
    except (OSError, TimeoutError) as err:
        raise LinkClosed(f"cannot reach {url}: {err}") from None
    except Exception as err:  # websockets' handshake errors (InvalidURI, InvalidStatus...)
        if type(err).__module__.startswith("websockets"):
            raise LinkClosed(f"cannot open a websocket to {url}: {err}") from None
        raise


class RemotePolicy(LinkPolicy):
    """The Policy served by `edgevla serve` at `url` (ws://HOST:PORT), reconnecting with backoff."""

    def __init__(
        self, url: str, expect: Expectation, token: str | None = None, jpeg: bool = False, **options
    ):
        super().__init__(
            lambda: connect_websocket(url), expect, token=token, jpeg=jpeg, describe=url, **options
        )


@dataclass(frozen=True)
class Request:
    id: int
    tick: int  # the control tick the observation was taken at: chunk row i is for tick + i
    obs: Observation
    guidance: Guidance | None
    sent_s: float  # perf_counter at submit


@dataclass(frozen=True)
class Result:
    request: Request
    actions: np.ndarray | None  # None when inference failed or was held
    elapsed_ms: float  # submit to result, transport included
    error: str | None = None
    held: str | None = None  # the dual system gave no chunk: no context yet, or too old (not a failure)
    frame_time: float | None = None  # when the frames behind the chunk were taken (loop clock, s)
    context_age_s: float | None = None  # the request's timestamp minus frame_time
    undecoded: bool = False  # the head decoded no chunk and the policy sent a hold (fast)


class PolicyWorker:
    """Runs one inference at a time on its own thread; submit/poll never block."""

    def __init__(self, policy: Policy | Systems):
        self.policy = policy
        self._cond = threading.Condition()
        self._pending: Request | None = None
        self._result: Result | None = None
        self._busy = False
        self._stop = False
        self._next_id = 0
        self.failures = 0
        self._streak = 0  # consecutive failures
        self._retry_at = 0.0
        self._thread = threading.Thread(target=self._run, name="edgevla-policy-worker", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A request is queued or running, or its result has not been collected yet."""
        return self._busy

    def submit(self, tick: int, obs: Observation, guidance: Guidance | None = None) -> bool:
        """Queue one request; False while one is in flight or while backing off after failures."""
        with self._cond:
            if self._busy or self._stop or time.perf_counter() < self._retry_at:
                return False
            self._busy = True
            self._pending = Request(self._next_id, tick, obs, guidance, time.perf_counter())
            self._next_id += 1
            self._cond.notify()
            return True

    def poll(self) -> Result | None:
        with self._cond:
            result, self._result = self._result, None
            if result is not None:
                self._busy = False
            return result

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                request, self._pending = self._pending, None
            acted, error = None, None
            holds = getattr(self.policy, "holds", 0)  # counted by a token head (fast)
            try:
                acted = self._compute(request)
            except Refused as err:
                error = str(err)
                log.error("policy refused: %s", err)
            except EdgevlaError as err:  # link dropped, worker died, server error: hold and retry
                error = str(err)
                if not self._stop:  # closing the worker cuts a request short: not worth a warning
                    log.warning("inference failed, the robot holds its position: %s", err)
            except Exception as err:  # a policy bug: the loop keeps holding instead of dying
                error = f"{type(err).__name__}: {err}"
                log.exception("policy raised")
            elapsed = (time.perf_counter() - request.sent_s) * 1e3
            with self._cond:
                if error is None:
                    self._streak = 0
                else:  # a policy that keeps failing is retried less and less often (up to 5 s)
                    self.failures += 1
                    self._streak += 1
                    self._retry_at = time.perf_counter() + min(5.0, 0.1 * 2 ** (self._streak - 1))
                if acted is None:
                    self._result = Result(request, None, elapsed, error)
                else:
                    self._result = Result(
                        request,
                        acted.actions,
                        elapsed,
                        None,
                        acted.held,
                        acted.frame_time,
                        acted.context_age_s,
                        getattr(self.policy, "holds", 0) > holds,
                    )

    def _compute(self, request: Request) -> Acted:
        """One full pass: the request's own frames are the context, so their age is nil."""
        started = time.perf_counter()
        actions = np.asarray(self.policy.infer(request.obs, None, request.guidance), dtype=np.float32)
        infer_ms = (time.perf_counter() - started) * 1e3
        frame_time = request.obs.get(TIMESTAMP_KEY)
        return Acted(actions, None, None if frame_time is None else 0.0, frame_time, infer_ms)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self.policy.close()  # also wakes a LinkPolicy waiting in backoff
        self._thread.join(timeout=5)
