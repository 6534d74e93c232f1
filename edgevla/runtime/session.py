"""Both ends of one protocol conversation over a `Link`.

`serve_session` is the policy side (used by `edgevla serve` for each websocket client and by the
local worker process on its stdin/stdout). `LinkPolicy` is the robot side: a `Policy` whose
inference happens at the other end, reconnecting with backoff when the link drops. A client that
runs the dual system says so in its hello and is served by `dual_session` instead (its robot
side, `LinkSystems`, shares `LinkClient`'s handshake and reconnection).
"""

from __future__ import annotations

import contextlib
import hmac
import importlib.util
import itertools
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from edgevla.errors import EdgevlaError, MissingExtraError
from edgevla.policy_io import DualPolicy, Expectation, Guidance, Observation, Policy, PolicySpec, check_fit
from edgevla.runtime.dual import not_dual
from edgevla.runtime.link import Link, LinkClosed
from edgevla.runtime.preprocess import shrink_to_fit
from edgevla.runtime.wire import (
    HELLO_MAX_BYTES,
    IMAGE_PREFIX,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Chunk,
    ErrorMessage,
    Hello,
    InferRequest,
    Refused,
    Welcome,
    WireError,
    decode,
    encode,
)

log = logging.getLogger("edgevla.runtime")
HELLO_TIMEOUT_S = 10.0  # from connecting to an accepted hello


def _check_hello(hello: object, policy: Policy, token: str | None) -> Hello:
    if not isinstance(hello, Hello):
        raise Refused("expected a hello message first")
    if hello.version != PROTOCOL_VERSION:
        raise Refused(
            f"client speaks edgevla protocol v{hello.version}, this server v{PROTOCOL_VERSION}: "
            "install the same edgevla version on both sides"
        )
    # constant-time compare so the token cannot be guessed byte by byte from response times
    if token is not None and not hmac.compare_digest((hello.token or "").encode(), token.encode()):
        raise Refused("wrong or missing token: pass the server's --token")
    spec = policy.spec
    problem = check_fit(spec, hello.expect)
    if problem:
        raise Refused(problem)
    if hello.dual and not isinstance(policy, DualPolicy):
        raise Refused(not_dual(spec.name))
    if hello.jpeg and importlib.util.find_spec("PIL") is None:
        raise Refused("this server cannot decode JPEG (install edgevla[record] there) - run without --jpeg")
    return hello


def serve_session(
    link: Link,
    policy: Policy,
    *,
    token: str | None = None,
    infer_lock: threading.Lock | None = None,
    context_lock: threading.Lock | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
    hello_timeout_s: float = HELLO_TIMEOUT_S,
    peer: str = "client",
    log_sent_errors: bool = True,
) -> None:
    """Serve one client until it leaves or misbehaves; never raises for the client's faults.

    A misbehaving client gets one error message naming the problem and is disconnected; the
    caller (a server with other clients) is not disturbed. `infer_lock` serialises clients
    sharing one policy (and their System 1 passes); `context_lock` their System 2 passes, so a
    System 2 pass of one robot never holds up the chunks of any. `log_sent_errors`: also log
    that message here (a server's own record); a worker process leaves it to its parent, which
    reports what it receives. Until its hello is
    accepted (within `hello_timeout_s`) a client may send at most HELLO_MAX_BYTES; after it,
    `max_bytes`.
    """
    lock = infer_lock or threading.Lock()
    spec = policy.spec
    served = [0]  # chunks sent, for the log line at the end
    try:
        # a client that connects and says nothing must not hold a server thread forever, and
        # one without a token must not make the server buffer more than a hello's worth
        link.set_max_bytes(HELLO_MAX_BYTES)
        hello = decode(link.recv(max(hello_timeout_s, 1e-3)), max_bytes=HELLO_MAX_BYTES)
        hello = _check_hello(hello, policy, token)
        link.set_max_bytes(max_bytes)
        link.send(encode(Welcome(spec)))
        log.info("%s: connected to policy '%s'%s", peer, spec.name, " (dual system)" if hello.dual else "")
        if hello.dual:
            from edgevla.runtime.dual_session import serve_dual  # it builds on this module

            serve_dual(link, policy, lock, context_lock or threading.Lock(), max_bytes, served)
        else:
            _serve_infer(link, policy, lock, max_bytes, served)
    except LinkClosed as err:
        log.info("%s: gone after %d chunks: %s", peer, served[0], err)
    except EdgevlaError as err:  # protocol faults, refusals, bad observations
        if log_sent_errors:
            log.warning("%s: %s", peer, err)
        send_error(link, str(err))
    except Exception as err:  # a policy bug must not take the server down with it
        log.exception("%s: policy failed", peer)
        send_error(link, f"policy failed on the server: {type(err).__name__}: {err}")
    finally:
        link.close()


def _serve_infer(link: Link, policy: Policy, lock: threading.Lock, max_bytes: int, served: list[int]) -> None:
    """Single-rate: one full pass per infer message, until the link drops (raises)."""
    spec = policy.spec
    while True:
        msg = decode(link.recv(), spec, max_bytes)
        if not isinstance(msg, InferRequest):
            raise WireError(f"expected an infer message, got {type(msg).__name__}")
        with lock:
            start = time.perf_counter()
            holds = getattr(policy, "holds", 0)  # counted by a token head (fast) that decoded none
            actions = policy.infer(msg.obs, msg.noise, msg.guidance)
            infer_ms = (time.perf_counter() - start) * 1e3
            undecoded = getattr(policy, "holds", 0) > holds
        chunk = Chunk(id=msg.id, actions=check_chunk(actions, spec), infer_ms=infer_ms, undecoded=undecoded)
        link.send(encode(chunk))
        served[0] += 1


def send_error(link: Link, message: str) -> None:
    with contextlib.suppress(LinkClosed):
        link.send(encode(ErrorMessage(message[:2000])))


def check_chunk(actions: np.ndarray, spec: PolicySpec) -> np.ndarray:
    """A chunk as float32, refused unless it has the shape the policy's spec promises."""
    actions = np.asarray(actions, dtype=np.float32)
    if actions.shape != (spec.chunk_size, spec.action_dim):
        raise EdgevlaError(
            f"policy returned shape {actions.shape}, its spec says {(spec.chunk_size, spec.action_dim)}"
        )
    return actions


class LinkClient:
    """The robot's end of a link to a policy (a worker process or a remote server): the
    handshake, and a new link with backoff whenever it drops.

    `open_link` makes a fresh link; it is called again, with exponential backoff, whenever the
    link drops. A refusal (token, policy mismatch) is raised at once: retrying cannot fix it.
    `dual`: the client runs the dual system (the hello says so).
    """

    def __init__(
        self,
        open_link: Callable[[], Link],
        expect: Expectation,
        *,
        token: str | None = None,
        jpeg: bool = False,
        timeout_s: float = 60.0,
        backoff_s: tuple[float, float] = (0.2, 5.0),
        describe: str = "policy",
        dual: bool = False,
    ):
        if jpeg and importlib.util.find_spec("PIL") is None:
            raise MissingExtraError("record", "PIL")  # say it now, not from the worker thread later
        self.open_link, self.expect, self.token, self.jpeg = open_link, expect, token, jpeg
        self.timeout_s, self.backoff_s, self.describe, self.dual = timeout_s, backoff_s, describe, dual
        self._link: Link | None = None
        self._ids = itertools.count()
        self._closed = threading.Event()
        self.reconnects = 0
        self.last_infer_ms = float("nan")
        self.holds = 0  # chunks the policy behind the link sent as holds (a token head decoded none)
        self.spec: PolicySpec = self._connect(expected=None)

    def _connect(self, expected: PolicySpec | None) -> PolicySpec:
        link = self.open_link()
        try:
            link.send(encode(Hello(expect=self.expect, token=self.token, jpeg=self.jpeg, dual=self.dual)))
            reply = decode(link.recv(self.timeout_s))
        except BaseException:
            link.close()
            raise
        if isinstance(reply, ErrorMessage):
            link.close()
            raise Refused(f"{self.describe} refused the connection: {reply.message}")
        if not isinstance(reply, Welcome) or reply.version != PROTOCOL_VERSION:
            link.close()
            raise Refused(f"{self.describe} did not answer with an edgevla v{PROTOCOL_VERSION} welcome")
        if expected is not None and reply.spec != expected:
            link.close()
            raise Refused(
                f"{self.describe} now serves a different policy ('{reply.spec.name}'); restart the run"
            )
        self._link = link
        self._connected(link, reply.spec)
        return reply.spec

    def _connected(self, link: Link, spec: PolicySpec) -> None:
        """A subclass's hook: `link` was just opened and welcomed."""

    def reconnect(self) -> None:
        """Open a new link, waiting between attempts (doubling up to the max) until it works."""
        delay, max_delay = self.backoff_s
        while not self._closed.is_set():
            try:
                self._connect(expected=self.spec)
                self.reconnects += 1
                log.info("%s: reconnected", self.describe)
                return
            except (LinkClosed, OSError, WireError) as err:
                log.warning("%s: reconnect failed (%s); next try in %.1f s", self.describe, err, delay)
            self._closed.wait(delay)
            delay = min(2 * delay, max_delay)
        raise LinkClosed(f"{self.describe} closed")

    def _fit_images(self, obs: Observation) -> Observation:
        """Camera frames shrunk to the policy's image size, which is all the server accepts (the
        policy would shrink them to it anyway; a smaller message is sent sooner)."""
        fitted = dict(obs)
        for camera in self.spec.cameras:
            key = IMAGE_PREFIX + camera.name
            image = obs.get(key)
            if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
                fitted[key] = shrink_to_fit(image, camera.height, camera.width)
        return fitted

    def _drop(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def close(self) -> None:
        self._closed.set()
        self._drop()


class LinkPolicy(LinkClient, Policy):
    """A Policy served at the other end of a link (a worker process or a remote server)."""

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        if self._link is None:
            self.reconnect()
        link = self._link
        request_id = next(self._ids)
        obs = self._fit_images(obs)
        try:
            link.send(
                encode(InferRequest(id=request_id, obs=obs, noise=noise, guidance=guidance), jpeg=self.jpeg)
            )
            reply = decode(link.recv(self.timeout_s), self.spec)
        except (LinkClosed, WireError):
            self._drop()
            raise
        if isinstance(reply, ErrorMessage):
            self._drop()
            raise EdgevlaError(f"{self.describe}: {reply.message}")
        if not isinstance(reply, Chunk) or reply.id != request_id:
            self._drop()
            raise WireError(f"{self.describe} answered request {request_id} out of order")
        self.last_infer_ms = reply.infer_ms
        self.holds += reply.undecoded
        return reply.actions
