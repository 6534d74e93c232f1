"""The dual system over a link: both ends of the conversation after a hello with `dual: true`.

Both systems run where the model is (the worker process, or the server: one context per
connection). The robot sends its camera frames only with `context` requests, at System 2's pace,
and only its state with `act` requests, so a chunk request is a few hundred bytes whatever the
cameras. A System 2 pass runs in its own thread while `act` requests are answered, so the two
kinds of answer come back in any order, matched to their requests by id.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import DualPolicy, Expectation, Guidance, Observation
from edgevla.runtime.dual import (
    HELD_NO_CONTEXT,
    HELD_STALE,
    Acted,
    ContextInfo,
    LocalSystems,
    frames_of,
    state_of,
)
from edgevla.runtime.link import Link, LinkClosed
from edgevla.runtime.session import LinkClient, check_chunk, send_error
from edgevla.runtime.wire import (
    ActRequest,
    Chunk,
    ContextReady,
    ContextRequest,
    ErrorMessage,
    Held,
    Message,
    WireError,
    decode,
    encode,
)

log = logging.getLogger("edgevla.runtime")
HELD_REASONS = (HELD_NO_CONTEXT, HELD_STALE)

# --- the policy's side ---------------------------------------------------------------------------


class _System2:
    """One System 2 pass at a time, in its own thread; answers `context` requests on the link."""

    def __init__(self, link: Link, systems: LocalSystems):
        self.link, self.systems = link, systems
        self._cond = threading.Condition()
        self._job: ContextRequest | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="edgevla-system2", daemon=True)
        self._thread.start()

    def begin(self, request: ContextRequest) -> None:
        with self._cond:
            if self._job is not None:
                raise WireError("context: another request while System 2 still runs (one at a time)")
            self._job = request
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job = self._job
            try:
                info = self.systems.encode(job.episode, job.obs)
                with self._cond:
                    self._job = None  # before the answer: the robot sends its next request on it
                self.link.send(encode(ContextReady(job.id, info.frame_time, info.encode_ms)))
            except LinkClosed:
                return
            except Exception as err:  # a policy bug: the robot is told, and the session ends
                log.exception("System 2 failed")
                send_error(self.link, f"System 2 failed: {type(err).__name__}: {err}")
                self.link.close()
                return

    def finish(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5)


def serve_dual(
    link: Link,
    policy: DualPolicy,
    act_lock: threading.Lock,
    context_lock: threading.Lock,
    max_bytes: int,
    served: list[int],
) -> None:
    """Answer `context` and `act` requests until the link drops (raises, as `serve_session` expects)."""
    spec = policy.spec
    systems = LocalSystems(policy, context_lock, act_lock, owns_policy=False)
    system2 = _System2(link, systems)
    try:
        while True:
            msg = decode(link.recv(), spec, max_bytes)
            if isinstance(msg, ContextRequest):
                system2.begin(msg)
            elif isinstance(msg, ActRequest):
                acted = systems.act(msg.episode, msg.obs, msg.max_context_age_s, msg.noise, msg.guidance)
                if acted.actions is None:
                    link.send(encode(Held(msg.id, acted.held, acted.frame_time, acted.context_age_s)))
                    continue
                chunk = check_chunk(acted.actions, spec)
                link.send(encode(Chunk(msg.id, chunk, acted.infer_ms, acted.frame_time, acted.context_age_s)))
                served[0] += 1
            else:
                raise WireError(f"expected a context or act message (dual system), got {type(msg).__name__}")
    finally:
        system2.finish()


# --- the robot's side ----------------------------------------------------------------------------


class _Waiter:
    def __init__(self, link: Link):
        self.link = link
        self.event = threading.Event()
        self.reply: Message | None = None
        self.error: EdgevlaError | None = None


class LinkSystems(LinkClient):
    """Both systems of the policy at the other end of a link (a worker process or `edgevla serve`),
    with a System 2 and a System 1 request in flight at once; a reader thread per link hands
    each answer to the request of its id."""

    def __init__(self, open_link: Callable[[], Link], expect: Expectation, **options):
        self._pending: dict[int, _Waiter] = {}
        self._pending_lock = threading.Lock()
        self._link_lock = threading.Lock()  # one reconnection at a time
        self._request_ids = itertools.count()
        super().__init__(open_link, expect, dual=True, **options)

    def _connected(self, link: Link, spec) -> None:
        threading.Thread(
            target=self._read, args=(link, spec), name="edgevla-dual-reader", daemon=True
        ).start()

    def _read(self, link: Link, spec) -> None:
        try:
            while True:
                reply = decode(link.recv(), spec)
                if isinstance(reply, ErrorMessage):
                    raise EdgevlaError(f"{self.describe}: {reply.message}")
                with self._pending_lock:
                    waiter = self._pending.pop(getattr(reply, "id", -1), None)
                if waiter is None:
                    raise WireError(f"{self.describe} answered a request that was not asked")
                waiter.reply = reply
                waiter.event.set()
        except EdgevlaError as err:  # the link dropped, or the other end broke the protocol
            self._lost(link, err)

    def _lost(self, link: Link, err: EdgevlaError) -> None:
        """Fail every request in flight on `link` with `err`, and close it."""
        with self._pending_lock:
            lost = {i: w for i, w in self._pending.items() if w.link is link}
            for request_id in lost:
                del self._pending[request_id]
        for waiter in lost.values():
            waiter.error = err
            waiter.event.set()
        with self._link_lock:
            if self._link is link:
                self._drop()
            else:
                link.close()

    def _call(self, build: Callable[[int], Message], answers: tuple[type, ...]) -> Message:
        """Send the request `build(id)` makes and wait for its answer, one of the types `answers`."""
        with self._link_lock:
            if self._link is None:
                self.reconnect()
            link = self._link
        request_id = next(self._request_ids)
        waiter = _Waiter(link)
        with self._pending_lock:
            self._pending[request_id] = waiter
        try:
            link.send(encode(build(request_id), jpeg=self.jpeg))
        except LinkClosed as err:
            self._lost(link, err)
        if not waiter.event.wait(self.timeout_s):
            self._lost(link, LinkClosed(f"{self.describe} sent nothing for {self.timeout_s:.0f} s"))
        if waiter.error is None and not (
            isinstance(waiter.reply, answers) and getattr(waiter.reply, "reason", HELD_STALE) in HELD_REASONS
        ):
            waiter.error = WireError(
                f"{self.describe} answered request {request_id} with a {type(waiter.reply).__name__}"
            )
            self._lost(link, waiter.error)
        if waiter.error is not None:
            raise type(waiter.error)(str(waiter.error))  # a fresh one per caller thread
        return waiter.reply

    def encode(self, episode: int, obs: Observation) -> ContextInfo:
        frames = self._fit_images(frames_of(obs))
        reply = self._call(lambda i: ContextRequest(i, episode, frames), (ContextReady,))
        return ContextInfo(reply.frame_time, reply.encode_ms)

    def act(
        self,
        episode: int,
        obs: Observation,
        max_age_s: float,
        noise: np.ndarray | None = None,
        guidance: Guidance | None = None,
    ) -> Acted:
        state = state_of(obs)
        reply = self._call(lambda i: ActRequest(i, episode, max_age_s, state, noise, guidance), (Chunk, Held))
        if isinstance(reply, Held):
            return Acted(None, reply.reason, reply.context_age_s, reply.frame_time, 0.0)
        return Acted(reply.actions, None, reply.context_age_s, reply.frame_time, reply.infer_ms)
