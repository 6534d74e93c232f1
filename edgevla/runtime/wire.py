"""The edgevla wire protocol: msgpack messages, numpy arrays as raw bytes, a strict decoder.

One protocol serves every transport (websockets to a remote server, a pipe to a local worker
process). Nothing is ever unpickled: a message is a msgpack map with a "type" field, arrays are
maps {"nd": 1, "dtype", "shape", "data"} whose dtype comes from a short allowlist, and every
field is checked for type, shape and size before anyone uses it. Anything else raises
`WireError` with one line saying what was wrong.

Conversation (client -> server, server -> client):
    hello   {version, token, expect, jpeg, dual?}  ->  welcome {version, spec} | error {message}
    infer   {id, obs, noise, guidance}              ->  chunk   {id, actions, infer_ms[, undecoded]} | error {message}
After a hello with `dual: true` (the dual system, edgevla.runtime.dual), instead of infer, and
answered in any order (a context pass runs while chunks are served):
    context {id, episode, obs: images, task, timestamp}  ->  context_ready {id, frame_time, encode_ms}
    act     {id, episode, max_context_age_s, obs: state, timestamp, noise, guidance}
                                                          ->  chunk {id, actions, infer_ms, frame_time,
                                                              context_age_s} | held {id, reason, ...}
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import msgpack
import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.policy_io import (
    IMAGE_PREFIX,
    STATE_KEY,
    TASK_KEY,
    TIMESTAMP_KEY,
    CameraSpec,
    Expectation,
    Guidance,
    Observation,
    PolicySpec,
)

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a few camera frames; raise on the server with --max-message-mb
# Until its hello is accepted a peer is a stranger: a hello (token, camera names) fits in a few KiB,
# so a stranger's message can never make the server buffer more than this.
HELLO_MAX_BYTES = 64 * 1024
MAX_IMAGE_SIDE = 4096
MAX_TASK_CHARS = 2000
MAX_DIM = 4096  # no policy dimension (state, action, chunk) is anywhere near this
# Only plain numeric dtypes cross the wire; "O" (objects) and friends never do.
DTYPES = {"<f4": np.float32, "<f8": np.float64, "|u1": np.uint8, "<i4": np.int32, "<i8": np.int64}


class WireError(EdgevlaError):
    """A message that is not valid edgevla protocol (malformed, wrong type, wrong shape, too big)."""


class Refused(EdgevlaError):
    """The peer refused us (bad token, other policy, other protocol version); retrying will not help."""


# --- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    expect: Expectation
    token: str | None = None
    jpeg: bool = False  # the client will send images as JPEG
    version: int = PROTOCOL_VERSION
    dual: bool = False  # the client runs the dual system: context and act instead of infer


@dataclass(frozen=True)
class Welcome:
    spec: PolicySpec
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class InferRequest:
    id: int  # echoed in the chunk; the robot side keeps the control tick each id was taken at
    obs: Observation
    noise: np.ndarray | None = None
    guidance: Guidance | None = None


@dataclass(frozen=True)
class Chunk:
    id: int
    actions: np.ndarray  # float32 (chunk_size, action_dim)
    infer_ms: float  # time the policy itself took on the server
    # dual system: when the frames of the context used were taken, and how much older than the state
    frame_time: float | None = None
    context_age_s: float | None = None
    undecoded: bool = False  # the head decoded none and the policy sent a hold (fast); sent when true


@dataclass(frozen=True)
class ContextRequest:
    """System 2 on these frames (images, task, timestamp) for the client's `episode`."""

    id: int
    episode: int
    obs: Observation


@dataclass(frozen=True)
class ContextReady:
    id: int
    frame_time: float  # the timestamp of the frames it saw
    encode_ms: float  # System 2's own time on the server


@dataclass(frozen=True)
class ActRequest:
    """System 1 on this state (and timestamp) against the newest context of `episode`, unless that
    context is older than `max_context_age_s`."""

    id: int
    episode: int
    max_context_age_s: float
    obs: Observation
    noise: np.ndarray | None = None
    guidance: Guidance | None = None


@dataclass(frozen=True)
class Held:
    """No chunk: the context was missing or too old (edgevla.runtime.dual's HELD_* reasons)."""

    id: int
    reason: str
    frame_time: float | None = None
    context_age_s: float | None = None


@dataclass(frozen=True)
class ErrorMessage:
    message: str


Message = (
    Hello | Welcome | InferRequest | Chunk | ContextRequest | ContextReady | ActRequest | Held | ErrorMessage
)


# --- encoding ------------------------------------------------------------------------------


def _array(a: np.ndarray) -> dict:
    a = np.asarray(a)
    dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dtype.str not in DTYPES:
        raise WireError(f"cannot send an array of dtype {a.dtype}; allowed: {', '.join(DTYPES)}")
    a = np.ascontiguousarray(a, dtype=dtype)
    return {"nd": 1, "dtype": dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image  # optional: the `record` extra; dispatch names it when missing

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _spec_to_wire(spec: PolicySpec) -> dict:
    d = asdict(spec)
    d["cameras"] = [asdict(c) for c in spec.cameras]
    return d


def _obs_to_wire(obs: Observation, jpeg: bool) -> dict:
    out: dict[str, Any] = {}
    for key, value in obs.items():
        if key == TASK_KEY:
            out[key] = str(value)
        elif key == TIMESTAMP_KEY:
            out[key] = float(value)
        elif key.startswith(IMAGE_PREFIX) and jpeg:
            out[key] = {"jpeg": encode_jpeg(value)}
        else:
            out[key] = _array(value)
    return out


def _guidance_to_wire(g: Guidance | None) -> dict | None:
    return None if g is None else {"actions": _array(g.actions), "weights": _array(g.weights)}


def _optional(value: float | None) -> float | None:
    return None if value is None else float(value)


def encode(msg: Message, jpeg: bool = False) -> bytes:
    """Serialise one message; `jpeg` compresses observation images (needs Pillow)."""
    if isinstance(msg, Hello):
        body = {"type": "hello", "version": msg.version, "token": msg.token, "jpeg": msg.jpeg}
        body["expect"] = {**asdict(msg.expect), "cameras": list(msg.expect.cameras)}
        if msg.dual:  # only when asked: a single-rate hello is what every v1 server reads
            body["dual"] = True
    elif isinstance(msg, Welcome):
        body = {"type": "welcome", "version": msg.version, "spec": _spec_to_wire(msg.spec)}
    elif isinstance(msg, InferRequest):
        body = {"type": "infer", "id": msg.id, "obs": _obs_to_wire(msg.obs, jpeg)}
        body["noise"] = None if msg.noise is None else _array(msg.noise)
        body["guidance"] = _guidance_to_wire(msg.guidance)
    elif isinstance(msg, Chunk):
        body = {"type": "chunk", "id": msg.id, "actions": _array(msg.actions)}
        body["infer_ms"] = float(msg.infer_ms)
        if msg.frame_time is not None:
            body["frame_time"] = float(msg.frame_time)
            body["context_age_s"] = _optional(msg.context_age_s)
        if msg.undecoded:
            body["undecoded"] = True
    elif isinstance(msg, ContextRequest):
        body = {"type": "context", "id": msg.id, "episode": msg.episode, "obs": _obs_to_wire(msg.obs, jpeg)}
    elif isinstance(msg, ContextReady):
        body = {"type": "context_ready", "id": msg.id, "frame_time": float(msg.frame_time)}
        body["encode_ms"] = float(msg.encode_ms)
    elif isinstance(msg, ActRequest):
        body = {"type": "act", "id": msg.id, "episode": msg.episode, "obs": _obs_to_wire(msg.obs, jpeg)}
        body["max_context_age_s"] = float(msg.max_context_age_s)
        body["noise"] = None if msg.noise is None else _array(msg.noise)
        body["guidance"] = _guidance_to_wire(msg.guidance)
    elif isinstance(msg, Held):
        body = {"type": "held", "id": msg.id, "reason": msg.reason}
        body["frame_time"] = _optional(msg.frame_time)
        body["context_age_s"] = _optional(msg.context_age_s)
    elif isinstance(msg, ErrorMessage):
        body = {"type": "error", "message": msg.message}
    else:
        raise TypeError(f"not a protocol message: {type(msg).__name__}")
    return msgpack.packb(body, use_bin_type=True)


# --- strict decoding -----------------------------------------------------------------------


class _Fields:
    """Typed access to one decoded map; every failure names the field."""

    def __init__(self, value: Any, where: str):
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected a map, got {type(value).__name__}")
        self.data, self.where = value, where

    def _fail(self, key: str, problem: str) -> WireError:
        return WireError(f"{self.where}.{key}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise self._fail(key, "missing")
        value = self.data[key]
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self._fail(key, f"expected {names}, got {type(value).__name__}")
        return value

    def int(self, key: str, lo: int = 0, hi: int = 2**62) -> int:
        value = self.get(key, int)
        if not lo <= value <= hi:
            raise self._fail(key, f"{value} out of range [{lo}, {hi}]")
        return value

    def number(self, key: str, optional: bool = False) -> float | None:
        value = self.get(key, (int, float), optional)
        if value is not None and not math.isfinite(value):
            raise self._fail(key, "not a finite number")
        return None if value is None else float(value)

    def str(self, key: str, max_len: int, optional: bool = False) -> str | None:
        value = self.get(key, str, optional)
        if value is not None and len(value) > max_len:
            raise self._fail(key, f"longer than {max_len} characters")
        return value

    def only(self, allowed: set[str]) -> None:
        extra = set(self.data) - allowed
        if extra:
            raise WireError(f"{self.where}: unknown field(s) {sorted(map(str, extra))}")


def _decode_array(value: Any, where: str, dtype: Any = None, shape: tuple | None = None) -> np.ndarray:
    """Rebuild an array; `shape` entries of None accept any size (bounded by MAX_IMAGE_SIDE)."""
    f = _Fields(value, where)
    f.only({"nd", "dtype", "shape", "data"})
    if f.get("nd", int) != 1:
        raise WireError(f"{where}: not an array (nd must be 1)")
    dtype_str = f.get("dtype", str)
    if dtype_str not in DTYPES:
        raise WireError(f"{where}.dtype: '{dtype_str[:20]}' not allowed; allowed: {', '.join(DTYPES)}")
    dims = f.get("shape", list)
    if len(dims) > 4 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise WireError(f"{where}.shape: expected up to 4 non-negative integers")
    if any(d > MAX_IMAGE_SIDE for d in dims):
        raise WireError(f"{where}.shape: a dimension exceeds {MAX_IMAGE_SIDE}")
    data = f.get("data", bytes)
    itemsize = np.dtype(DTYPES[dtype_str]).itemsize
    if len(data) != math.prod(dims) * itemsize:
        raise WireError(f"{where}.data: {len(data)} bytes do not match shape {dims} of {dtype_str}")
    if dtype is not None and DTYPES[dtype_str] is not dtype:
        raise WireError(f"{where}: expected dtype {np.dtype(dtype)}, got {np.dtype(DTYPES[dtype_str])}")
    if shape is not None and (
        len(dims) != len(shape) or any(s is not None and s != d for s, d in zip(shape, dims, strict=True))
    ):
        want = "x".join("N" if s is None else str(s) for s in shape)
        raise WireError(f"{where}: expected shape {want}, got {'x'.join(map(str, dims)) or 'scalar'}")
    # frombuffer is read-only and aliases the message; copy so a policy may work in place
    return np.frombuffer(data, dtype=DTYPES[dtype_str]).reshape(dims).copy()


def _check_image_size(height: int, width: int, camera: CameraSpec, where: str) -> None:
    """Refuse an image bigger than the policy's own input: it would only be shrunk to that size,
    and decoding it first is how a few small JPEGs become gigabytes of pixels."""
    if height > camera.height or width > camera.width:
        raise WireError(
            f"{where}: image of {width}x{height} is larger than the {camera.width}x{camera.height} "
            "this policy takes; shrink it before sending (edgevla clients do)"
        )


def decode_jpeg(data: bytes, camera: CameraSpec, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        # open() parses only the header: the size is known before any pixel is decoded
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            _check_image_size(img.size[1], img.size[0], camera, where)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise WireError(f"{where}: not a JPEG image (no valid JPEG header)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        # Pillow's reasons ("Truncated File Read", "broken data stream") are words, not reprs
        raise WireError(f"{where}: damaged JPEG image ({err or type(err).__name__})") from None


def _decode_image(value: Any, camera: CameraSpec, where: str) -> np.ndarray:
    if isinstance(value, dict) and set(value) == {"jpeg"}:
        data = value["jpeg"]
        if not isinstance(data, bytes):
            raise WireError(f"{where}.jpeg: expected bytes, got {type(data).__name__}")
        return decode_jpeg(data, camera, where)
    # a raw array's declared shape is checked before its bytes are copied into an image
    shape = value.get("shape") if isinstance(value, dict) else None
    if isinstance(shape, list) and len(shape) == 3 and all(type(d) is int for d in shape):
        _check_image_size(shape[0], shape[1], camera, where)
    return _decode_array(value, where, np.uint8, (None, None, 3))


def _decode_spec(value: Any) -> PolicySpec:
    f = _Fields(value, "welcome.spec")
    cams = []
    for i, c in enumerate(f.get("cameras", list)):
        cf = _Fields(c, f"welcome.spec.cameras[{i}]")
        cams.append(
            CameraSpec(
                cf.str("name", 200), cf.int("height", 1, MAX_IMAGE_SIDE), cf.int("width", 1, MAX_IMAGE_SIDE)
            )
        )
    extra = f.get("extra", dict, optional=True) or {}
    return PolicySpec(
        name=f.str("name", 200),
        cameras=tuple(cams),
        state_dim=f.int("state_dim", 1, MAX_DIM),
        action_dim=f.int("action_dim", 1, MAX_DIM),
        chunk_size=f.int("chunk_size", 1, MAX_DIM),
        num_steps=f.int("num_steps", 0, MAX_DIM),
        max_action_dim=f.int("max_action_dim", 1, MAX_DIM),
        max_tokens=f.int("max_tokens", 0, 1 << 20),
        fps=f.number("fps", optional=True),
        extra={str(k): v for k, v in extra.items()},
    )


def _decode_expect(value: Any) -> Expectation:
    f = _Fields(value, "hello.expect")
    cams = f.get("cameras", list)
    if len(cams) > 32 or not all(isinstance(c, str) and 0 < len(c) <= 200 for c in cams):
        raise WireError("hello.expect.cameras: expected up to 32 camera names")
    fps = f.number("fps")
    if not 0 < fps <= 1000:
        raise WireError(f"hello.expect.fps: {fps} out of range (0, 1000]")
    return Expectation(
        state_dim=f.int("state_dim", 1, MAX_DIM),
        action_dim=f.int("action_dim", 1, MAX_DIM),
        cameras=tuple(cams),
        fps=fps,
        policy=f.str("policy", 200, optional=True),
    )


def decode_observation(
    value: Any, spec: PolicySpec, where: str = "infer", state: bool = True, images: bool = True
) -> Observation:
    """Validate an observation against the policy it is for: exactly its state and cameras. The
    dual system sends them apart: `images` (with the task) to System 2, `state` to System 1;
    either way the timestamp is then required (the context's age is measured with it)."""
    f = _Fields(value, f"{where}.obs")
    cameras = {IMAGE_PREFIX + c.name for c in spec.cameras}
    f.only({TIMESTAMP_KEY} | ({STATE_KEY} if state else set()) | ({TASK_KEY} | cameras if images else set()))
    obs: Observation = {}
    if state:
        obs[STATE_KEY] = _decode_array(
            f.get(STATE_KEY, dict), f"{where}.obs.{STATE_KEY}", np.float32, (spec.state_dim,)
        )
        if not np.isfinite(obs[STATE_KEY]).all():
            raise WireError(f"{where}.obs.{STATE_KEY}: contains NaN or infinity")
    if images:
        obs[TASK_KEY] = f.str(TASK_KEY, MAX_TASK_CHARS)
    timestamp = f.number(TIMESTAMP_KEY, optional=state and images)
    if timestamp is not None:
        if timestamp < 0:
            raise WireError(f"{where}.obs.{TIMESTAMP_KEY}: must not be negative")
        obs[TIMESTAMP_KEY] = timestamp
    for camera in sorted(spec.cameras, key=lambda c: c.name) if images else ():
        key = IMAGE_PREFIX + camera.name
        obs[key] = _decode_image(f.get(key, dict), camera, f"{where}.obs.{key}")
    return obs


def _decode_guidance(value: Any, where: str, spec: PolicySpec) -> Guidance | None:
    if value is None:
        return None
    h, a = spec.chunk_size, spec.action_dim
    g = _Fields(value, where)
    g.only({"actions", "weights"})
    guidance = Guidance(
        actions=_decode_array(g.get("actions", dict), f"{where}.actions", np.float32, (h, a)),
        weights=_decode_array(g.get("weights", dict), f"{where}.weights", np.float32, (h,)),
    )
    if not (np.isfinite(guidance.actions).all() and np.isfinite(guidance.weights).all()):
        raise WireError(f"{where}: contains NaN or infinity")
    return guidance


def _decode_noise(value: Any, where: str, spec: PolicySpec) -> np.ndarray | None:
    if value is None:
        return None
    return _decode_array(value, where, np.float32, (spec.chunk_size, spec.max_action_dim))


def _msgpack_reason(err: Exception) -> str:
    """msgpack raises some errors without a message; every refusal still says what was wrong."""
    if str(err):
        return str(err)
    if isinstance(err, msgpack.exceptions.FormatError):
        return "a byte that msgpack does not define (0xc1 or a reserved type)"
    if isinstance(err, msgpack.exceptions.StackError):
        return "nested too deeply"
    return f"malformed data ({type(err).__name__})"


def decode(data: bytes, spec: PolicySpec | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse and validate one message. Observations need the `spec` they are checked against."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"expected a binary message, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise WireError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        # limits stop a few bytes claiming a huge container; ext types (incl. timestamps) are refused
        body = msgpack.unpackb(
            bytes(data),
            raw=False,
            strict_map_key=True,
            max_ext_len=0,
            max_array_len=1024,
            max_map_len=256,
        )
    except (ValueError, msgpack.exceptions.UnpackException) as err:
        raise WireError(f"not valid msgpack: {_msgpack_reason(err)}") from None
    f = _Fields(body, "message")
    kind = f.get("type", str)
    if kind == "hello":
        f.only({"type", "version", "token", "expect", "jpeg", "dual"})
        return Hello(
            version=f.int("version", 0, 1 << 30),
            token=f.str("token", 1024, optional=True),
            expect=_decode_expect(f.get("expect", dict)),
            jpeg=bool(f.get("jpeg", bool)),
            dual=bool(f.get("dual", bool, optional=True)),
        )
    if kind == "welcome":
        f.only({"type", "version", "spec"})
        return Welcome(version=f.int("version", 0, 1 << 30), spec=_decode_spec(f.get("spec", dict)))
    if kind in ("infer", "context", "act") and spec is None:
        raise WireError(f"{kind} before a completed handshake")
    if kind == "infer":
        f.only({"type", "id", "obs", "noise", "guidance"})
        return InferRequest(
            id=f.int("id"),
            obs=decode_observation(f.get("obs", dict), spec),
            noise=_decode_noise(f.get("noise", dict, optional=True), "infer.noise", spec),
            guidance=_decode_guidance(f.get("guidance", dict, optional=True), "infer.guidance", spec),
        )
    if kind == "context":
        f.only({"type", "id", "episode", "obs"})
        obs = decode_observation(f.get("obs", dict), spec, "context", state=False)
        return ContextRequest(id=f.int("id"), episode=f.int("episode"), obs=obs)
    if kind == "act":
        f.only({"type", "id", "episode", "max_context_age_s", "obs", "noise", "guidance"})
        max_age = f.number("max_context_age_s")
        if max_age <= 0:
            raise WireError("act.max_context_age_s: must be positive")
        return ActRequest(
            id=f.int("id"),
            episode=f.int("episode"),
            max_context_age_s=max_age,
            obs=decode_observation(f.get("obs", dict), spec, "act", images=False),
            noise=_decode_noise(f.get("noise", dict, optional=True), "act.noise", spec),
            guidance=_decode_guidance(f.get("guidance", dict, optional=True), "act.guidance", spec),
        )
    if kind == "chunk":
        f.only({"type", "id", "actions", "infer_ms", "frame_time", "context_age_s", "undecoded"})
        shape = None if spec is None else (spec.chunk_size, spec.action_dim)
        return Chunk(
            id=f.int("id"),
            actions=_decode_array(f.get("actions", dict), "chunk.actions", np.float32, shape or (None, None)),
            infer_ms=f.number("infer_ms"),
            frame_time=f.number("frame_time", optional=True),
            context_age_s=f.number("context_age_s", optional=True),
            undecoded=bool(f.get("undecoded", bool, optional=True)),
        )
    if kind == "context_ready":
        f.only({"type", "id", "frame_time", "encode_ms"})
        return ContextReady(
            id=f.int("id"), frame_time=f.number("frame_time"), encode_ms=f.number("encode_ms")
        )
    if kind == "held":
        f.only({"type", "id", "reason", "frame_time", "context_age_s"})
        return Held(
            id=f.int("id"),
            reason=f.str("reason", 100),
            frame_time=f.number("frame_time", optional=True),
            context_age_s=f.number("context_age_s", optional=True),
        )
    if kind == "error":
        return ErrorMessage(message=f.str("message", 2000))
    raise WireError(f"message.type: unknown message type '{kind[:40]}'")
