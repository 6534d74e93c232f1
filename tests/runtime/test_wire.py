import contextlib

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgevla.policy_io import Guidance, check_fit
from edgevla.runtime.preprocess import letterbox, shrink_to_fit
from edgevla.runtime.wire import (
    ActRequest,
    Chunk,
    ContextReady,
    ContextRequest,
    ErrorMessage,
    Held,
    Hello,
    InferRequest,
    Welcome,
    WireError,
    decode,
    encode,
)

from .helpers import SPEC, expect, observation


def _infer(**kw):
    return InferRequest(id=7, obs=observation(), **kw)


def test_every_message_round_trips_exactly():
    noise = np.random.default_rng(1).standard_normal((10, 32)).astype(np.float32)
    guidance = Guidance(np.ones((10, 6), np.float32), np.linspace(1, 0, 10, dtype=np.float32))
    hello = Hello(expect=expect(cameras=("front",)), token="abc", jpeg=False)
    assert decode(encode(hello)) == hello
    assert decode(encode(Welcome(SPEC))).spec == SPEC
    assert decode(encode(ErrorMessage("nope"))) == ErrorMessage("nope")
    req = decode(encode(_infer(noise=noise, guidance=guidance)), SPEC)
    original = observation()
    assert req.id == 7 and req.obs["task"] == "pick the cube"
    for key in ("observation.state", "observation.images.front"):
        np.testing.assert_array_equal(req.obs[key], original[key])
        assert req.obs[key].dtype == original[key].dtype
        assert req.obs[key].flags.writeable  # a policy may normalise in place
    np.testing.assert_array_equal(req.noise, noise)
    np.testing.assert_array_equal(req.guidance.weights, guidance.weights)
    chunk = decode(
        encode(Chunk(id=3, actions=np.arange(60, dtype=np.float32).reshape(10, 6), infer_ms=4.5)), SPEC
    )
    assert chunk.id == 3 and chunk.infer_ms == 4.5 and chunk.actions.shape == (10, 6)


def _dual_messages() -> list:
    frames = {k: v for k, v in observation().items() if k != "observation.state"} | {"timestamp": 1.5}
    state = {"observation.state": observation()["observation.state"], "timestamp": 1.75}
    guidance = Guidance(np.ones((10, 6), np.float32), np.linspace(1, 0, 10, dtype=np.float32))
    return [
        ContextRequest(id=1, episode=3, obs=frames),
        ContextReady(id=1, frame_time=1.5, encode_ms=12.5),
        ActRequest(id=2, episode=3, max_context_age_s=0.5, obs=state, guidance=guidance),
        Chunk(2, np.ones((10, 6), np.float32), 3.0, frame_time=1.5, context_age_s=0.25),
        Held(id=2, reason="stale-context", frame_time=1.5, context_age_s=0.75),
    ]


def test_dual_system_messages_round_trip_and_carry_only_their_half():
    context, ready, act, chunk, held = (decode(encode(m), SPEC) for m in _dual_messages())
    assert decode(encode(Hello(expect=expect(), dual=True))).dual
    assert set(context.obs) == {"observation.images.front", "task", "timestamp"} and context.episode == 3
    assert ready == ContextReady(id=1, frame_time=1.5, encode_ms=12.5)
    assert set(act.obs) == {"observation.state", "timestamp"} and act.max_context_age_s == 0.5
    np.testing.assert_array_equal(act.guidance.weights, np.linspace(1, 0, 10, dtype=np.float32))
    assert (chunk.frame_time, chunk.context_age_s) == (1.5, 0.25)
    assert held == Held(id=2, reason="stale-context", frame_time=1.5, context_age_s=0.75)
    # a chunk request with images, or without the timestamp the context's age is measured by
    body = msgpack.unpackb(encode(_dual_messages()[2]), raw=False)
    with pytest.raises(WireError, match=r"act.obs: unknown field.*images"):
        decode(_raw({**body, "obs": {**body["obs"], "observation.images.front": {}}}), SPEC)
    with pytest.raises(WireError, match=r"act.obs.timestamp: missing"):
        decode(_raw({**body, "obs": {"observation.state": body["obs"]["observation.state"]}}), SPEC)
    with pytest.raises(WireError, match="max_context_age_s: must be positive"):
        decode(_raw({**body, "max_context_age_s": 0.0}), SPEC)


def test_jpeg_images_decode_close_to_the_original():
    y, x = np.mgrid[0:32, 0:48]  # the policy's own size (SPEC front 32x48)
    image = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)  # smooth: JPEG-friendly
    obs = {"observation.state": np.zeros(6, np.float32), "task": "t", "observation.images.front": image}
    raw = encode(InferRequest(id=0, obs=obs))
    packed = encode(InferRequest(id=0, obs=obs), jpeg=True)
    assert len(packed) < len(raw) / 2
    got = decode(packed, SPEC).obs["observation.images.front"]
    assert got.shape == image.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - image).mean() < 4


def _raw(body) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def _valid_infer_body() -> dict:
    return msgpack.unpackb(encode(_infer()), raw=False)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b["obs"]["observation.state"].update(dtype="|O"), "dtype"),
        (lambda b: b["obs"]["observation.state"].update(shape=[7]), "bytes do not match"),
        (lambda b: b["obs"]["observation.state"].update(shape=[3], data=b"\0" * 12), "expected shape 6"),
        (
            lambda b: b["obs"]["observation.state"].update(dtype="<f8", data=b"\0" * 48),
            "expected dtype float32",
        ),
        (lambda b: b["obs"].update(task=5), "expected str"),
        (
            lambda b: b["obs"].update({"observation.images.side": b["obs"]["observation.images.front"]}),
            "unknown field",
        ),
        (lambda b: b["obs"].pop("observation.images.front"), "missing"),
        (
            lambda b: b["obs"]["observation.images.front"].update(shape=[24, 40, 4], data=b"\0" * 3840),
            "expected shape",
        ),
        (lambda b: b.update(id=-1), "out of range"),
        (lambda b: b.update(id=True), "expected int"),
        (lambda b: b.update(type="launch_missiles"), "unknown message type"),
        (lambda b: b.update(extra=1), "unknown field"),
        (
            lambda b: b["obs"].update({"observation.images.front": {"jpeg": b"not a jpeg"}}),
            "not a JPEG image",
        ),
    ],
)
def test_decoder_names_what_is_wrong(mutate, message):
    body = _valid_infer_body()
    mutate(body)
    with pytest.raises(WireError, match=message):
        decode(_raw(body), SPEC)


def test_non_finite_state_and_exotic_msgpack_are_refused():
    body = _valid_infer_body()
    body["obs"]["observation.state"]["data"] = np.full(6, np.nan, np.float32).tobytes()
    with pytest.raises(WireError, match="NaN"):
        decode(_raw(body), SPEC)
    with pytest.raises(WireError, match="msgpack"):
        decode(msgpack.packb({"type": msgpack.ExtType(1, b"x")}))  # ext types never decode
    with pytest.raises(WireError, match="msgpack"):
        decode(b"\xc1")  # a byte msgpack never uses
    with pytest.raises(WireError, match="exceeds the limit"):
        decode(b"\x00" * 100, max_bytes=50)
    with pytest.raises(WireError, match="handshake"):
        decode(encode(_infer()))  # an observation means nothing before the handshake


def _jpeg(height: int, width: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height)).save(buf, format="JPEG")
    return buf.getvalue()


def _jpeg_claiming(height: int, width: int) -> bytes:
    """An 8x8 JPEG whose frame header (SOF0) claims height x width: only a decoder that trusts
    the header before decoding refuses it for its size rather than for its broken data."""
    data = bytearray(_jpeg(8, 8))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize(
    "image",
    [
        {"jpeg": _jpeg_claiming(4096, 4096)},  # 256 KB on the wire would decode to 48 MB
        {"jpeg": _jpeg(33, 48)},  # one row more than the policy's 32x48
        {"jpeg": _jpeg(8, 5000)},
        {"nd": 1, "dtype": "|u1", "shape": [32, 49, 3], "data": bytes(32 * 49 * 3)},
    ],
    ids=["jpeg-header-4096", "jpeg-one-row-over", "jpeg-wide", "raw-one-column-over"],
)
def test_image_larger_than_the_policy_takes_is_refused_before_decoding(image):
    body = _valid_infer_body()
    body["obs"]["observation.images.front"] = image
    with pytest.raises(WireError, match=r"larger than the 48x32 this policy takes; shrink it"):
        decode(_raw(body), SPEC)
    body["obs"]["observation.images.front"] = {"jpeg": _jpeg(32, 48)}  # the policy's own size is fine
    assert decode(_raw(body), SPEC).obs["observation.images.front"].shape == (32, 48, 3)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\xc1", "a byte that msgpack does not define"),
        (b"\x91\xc1", "a byte that msgpack does not define"),
    ],
)
def test_msgpack_refusals_always_say_why(frame, reason):
    with pytest.raises(WireError, match=f"^not valid msgpack: {reason}"):
        decode(frame)


@pytest.mark.parametrize(
    ("jpeg", "reason"),
    [(b"not a jpeg", "not a JPEG image"), (_jpeg(32, 48)[:200], "damaged JPEG image (Truncated")],
)
def test_jpeg_refusals_say_what_is_wrong_in_words(jpeg, reason):
    body = _valid_infer_body()
    body["obs"]["observation.images.front"] = {"jpeg": jpeg}
    with pytest.raises(WireError) as refused:
        decode(_raw(body), SPEC)
    assert reason in str(refused.value)
    assert "<" not in str(refused.value) and " at 0x" not in str(refused.value)  # no Python reprs


def test_fit_check_explains_mismatches():
    assert check_fit(SPEC, expect(cameras=("front", "wrist"))) is None
    assert "state of 6 values, the robot has 7" in check_fit(SPEC, expect(joints=7, cameras=("front",)))
    assert "needs camera(s) front" in check_fit(SPEC, expect(cameras=("wrist",)))
    other = expect(cameras=("front",)).__class__(6, 6, ("front",), 30.0, policy="other")
    assert "client asked for 'other'" in check_fit(SPEC, other)


# --- fuzzing: whatever arrives, the decoder returns a message or raises WireError ---------

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=64),
)
_tree = st.recursive(
    _leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


def _decodes_cleanly(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(data, SPEC)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data):
    _decodes_cleanly(data)


@settings(max_examples=400, deadline=None)
@given(_tree)
def test_fuzz_random_msgpack_structures(tree):
    _decodes_cleanly(_raw(tree))
    _decodes_cleanly(_raw({"type": "infer", "id": 1, "obs": tree}))
    _decodes_cleanly(_raw({"type": "hello", "version": 1, "token": None, "jpeg": False, "expect": tree}))


_VALID = [
    encode(_infer(guidance=Guidance(np.zeros((10, 6), np.float32), np.zeros(10, np.float32)))),
    encode(Hello(expect=expect())),
    encode(Welcome(SPEC)),
    encode(Chunk(1, np.zeros((10, 6), np.float32), 1.0)),
    encode(_infer(), jpeg=True),  # corrupted JPEGs must fail as cleanly as corrupted msgpack
    *(encode(message) for message in _dual_messages()),
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_VALID), st.data())
def test_fuzz_mutated_valid_messages(valid, data):
    buf = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(buf)))
    _decodes_cleanly(bytes(buf[:cut]))


@pytest.mark.parametrize("shape", [(480, 640), (720, 1280), (500, 97), (100, 100)])
def test_frames_larger_than_the_policy_takes_are_shrunk_to_what_it_would_see(shape):
    # the robot side sends camera frames at the policy's size, which is all the server accepts
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.stack([x * 255 // shape[1], y * 255 // shape[0], (x + y) % 256], axis=-1).astype(np.uint8)
    small = shrink_to_fit(image, 96, 96)
    assert small.dtype == np.uint8 and max(small.shape[:2]) == 96
    scale = 96 / max(shape)  # aspect kept, to the pixel
    assert all(abs(side - full * scale) < 1 for side, full in zip(small.shape[:2], shape, strict=True))
    # what the policy sees differs from the full frame by uint8 rounding only
    assert np.abs(letterbox(small, 96) - letterbox(image, 96)).max() <= 1.01 / 255
    assert shrink_to_fit(small, 96, 96) is small  # a frame that fits is sent as it is
