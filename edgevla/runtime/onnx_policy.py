"""OnnxPolicy: an exported artifact run by ONNX Runtime, numpy and `tokenizers` only (no torch).

One chunk = the context graph (System 2: images + language; `encode_context`), the state graph
(System 1: the current state against that context, once per chunk) and the head graph called by
the head's numpy loop (`head_loops.py`; flow: `num_steps` Euler steps with RTC guidance between).
`infer(obs)` runs all three; a dual-system runtime calls `encode_context` at the camera's pace
and `act` for every chunk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError, first_line
from edgevla.policy_io import TIMESTAMP_KEY, Context, DualPolicy, Guidance, Observation
from edgevla.runtime.artifact import (
    FUSION_RECORD,
    GRAPHS,
    HEAD_FILE_KEYS,
    MANIFEST,
    STATS,
    TOKENIZER,
    Manifest,
    check_graph_shapes,
    read_artifact,
)
from edgevla.runtime.head_loops import LoopSettings, make_loop
from edgevla.runtime.npz import read_npz
from edgevla.runtime.preprocess import MeanStd, Preprocessor, TaskTokenizer
from edgevla.runtime.sampler import GuidanceTarget

# Preference order when the caller names none: the first that this onnxruntime build offers wins.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def pick_providers(requested: list[str] | None = None) -> list[str]:
    """Execution providers by short name (cpu, cuda, tensorrt) or full name; CPU is always last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if not requested:
        chosen = [p for p in PROVIDER_ORDER if p in available]
    else:
        chosen = [PROVIDER_ALIASES.get(name.lower(), name) for name in requested]
        missing = [p for p in chosen if p not in available]
        if missing:
            raise EdgevlaError(
                f"onnxruntime here offers {available}, not {missing}: install onnxruntime-gpu "
                "(or the Jetson build) for CUDA/TensorRT, or use --providers cpu"
            )
    return chosen if "CPUExecutionProvider" in chosen else [*chosen, "CPUExecutionProvider"]


def open_session(path: Path, providers: list[str], threads: int = 0, arena: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Without ORT's CPU arena, freed activations go back to the allocator: the 450M int8 artifact
    # measured 1.29 GB peak RSS over 3 chunks with the arena (it keeps growing), < 1 GB without.
    # A fused artifact (`export onnx --optimize`) allocates fewer, larger tensors: its 450M int8
    # prefix took 1988 ms of CPU with the arena against 2354 without, and its whole chunk 4.89 s /
    # 830 MB with the arena against 6.04 s / 980 MB unfused without (docs/PERFORMANCE.md).
    options.enable_cpu_mem_arena = arena
    # A policy runs three sessions in turn (context, state, head) and each keeps its own pool of
    # intra-op threads, which by default spin for a while after every run: on a 2-core box the
    # idle sessions' spinning threads took the cores from the running one. Off, the 450M
    # one-pass head's System 1 went from 64-70 to 37-38 ms and, beside a training run, the
    # 10-step one from 0.89-1.05 s to 0.52 s (docs/PERFORMANCE.md, "Threads").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # noqa: BLE001 - ORT raises its own untyped errors for bad graphs
        raise EdgevlaError(
            f"{path} is not a loadable ONNX graph ({first_line(err)}); export it again"
        ) from err


def declared_shapes(sessions: dict) -> dict[str, dict[str, list]]:
    """graph -> tensor -> shape, for the inputs and outputs of the ONNX Runtime sessions."""
    return {
        graph: {arg.name: list(arg.shape) for arg in session.get_inputs() + session.get_outputs()}
        for graph, session in sessions.items()
    }


def load_stats(path: Path, state_dim: int, action_dim: int) -> tuple[MeanStd, MeanStd]:
    """MEAN_STD of state and action from stats.npz (identity when absent), checked to hold one
    finite mean and std per dimension."""
    if not path.is_file():
        return MeanStd(), MeanStd()
    stats = read_npz(path)

    def of(kind: str, dim: int) -> MeanStd:
        names = (f"{kind}.mean", f"{kind}.std")
        if not any(name in stats for name in names):
            return MeanStd()
        for name in names:
            values = stats.get(name)
            if values is None or values.shape != (dim,) or values.dtype.kind != "f":
                found = "missing" if values is None else f"{values.dtype} {values.shape}"
                raise EdgevlaError(f"{path}: {name} is {found}, the policy needs {dim} floats")
            if not np.all(np.isfinite(values)):
                raise EdgevlaError(f"{path}: {name} holds NaN or inf")
        return MeanStd(stats[names[0]], stats[names[1]])

    return of("state", state_dim), of("action", action_dim)


def preprocessor_of(manifest: Manifest, art: Path) -> Preprocessor:
    state, action = load_stats(art / STATS, manifest.state_dim, manifest.action_dim)
    io = manifest.io
    return Preprocessor(io, TaskTokenizer(art / TOKENIZER, io.max_tokens), state, action)


def head_files(manifest: Manifest) -> list[str]:
    """The files the head's loop reads (hash-checked with the rest of the artifact)."""
    return [manifest.head[key] for key in HEAD_FILE_KEYS if key in manifest.head]


class OnnxPolicy(DualPolicy):
    """An exported artifact behind the runtime `Policy` interface, split in two systems."""

    def __init__(
        self,
        art: str | Path,
        providers: list[str] | None = None,
        threads: int = 0,
        seed: int | None = None,
        num_steps: int | None = None,
    ):
        self.art = Path(art)
        self.manifest = manifest = read_artifact(self.art)
        self.providers = pick_providers(providers)
        fused = FUSION_RECORD in manifest.files
        self.sessions = {
            graph: open_session(self.art / manifest.graphs[graph], self.providers, threads, arena=fused)
            for graph in GRAPHS
        }
        check_graph_shapes(manifest, self.art / MANIFEST, declared_shapes(self.sessions))
        self.loop = make_loop(
            LoopSettings(
                manifest.chunk_size,
                manifest.max_action_dim,
                manifest.num_steps,
                manifest.expert_hidden_size,
                manifest.min_period,
                manifest.max_period,
                manifest.head,
                {name: (self.art / name).read_text() for name in head_files(manifest)},
            ),
            num_steps,
        )
        self.holds = 0  # chunks the head could not decode (fast), replaced by a hold
        self.pre = preprocessor_of(manifest, self.art)
        self.rng = np.random.default_rng(seed)
        self.spec = self.pre.io.spec(
            manifest.name,
            {
                "backend": "onnx",
                "precision": manifest.precision,
                "head": manifest.head["name"],
                "providers": self.sessions["context"].get_providers(),
            },
        )

    @property
    def noise_shape(self) -> tuple[int, int]:
        return (self.manifest.chunk_size, self.manifest.max_action_dim)

    def context_feed(self, obs: Observation) -> dict[str, np.ndarray]:
        images, image_masks, tokens, token_mask = self.pre.context(obs)
        return {
            "images": images[None],
            "image_masks": image_masks[None],
            "tokens": tokens[None],
            "token_mask": token_mask[None],
        }

    def encode_context(self, obs: Observation) -> Context:
        stamp = obs.get(TIMESTAMP_KEY)
        arrays = self.sessions["context"].run(None, self.context_feed(obs))
        return Context(tuple(arrays), None if stamp is None else float(stamp))

    def state_feed(self, obs: Observation, context: Context) -> dict[str, np.ndarray]:
        context_k, context_v, context_mask = context.arrays
        return {
            "state": self.pre.state(obs)[None],
            "context_k": context_k,
            "context_v": context_v,
            "context_mask": context_mask,
        }

    def act(
        self,
        context: Context,
        obs: Observation,
        noise: np.ndarray | None = None,
        guidance: Guidance | None = None,
    ) -> np.ndarray:
        expert_k, expert_v, prefix_mask = self.sessions["state"].run(None, self.state_feed(obs, context))
        cache = {"expert_k": expert_k, "expert_v": expert_v, "prefix_mask": prefix_mask}
        head = self.sessions["head"]

        def run_step(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            return head.run(None, {**feed, **cache})

        if noise is None:
            noise = self.rng.standard_normal(self.noise_shape, dtype=np.float32)
        noise = self.pre.check_noise(noise)[None]
        target = None if guidance is None or not self.loop.guidable else self._guidance(guidance)
        chunk = self.loop.chunk(run_step, noise, target)[0]
        if self.loop.can_hold and np.isnan(chunk).all():
            self.holds += 1
            return self.pre.hold(obs)
        return self.pre.postprocess(chunk)

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        return self.act(self.encode_context(obs), obs, noise, guidance)

    def _guidance(self, guidance: Guidance) -> GuidanceTarget:
        actions, weights = self.pre.guidance(guidance.actions, guidance.weights)
        return GuidanceTarget(actions, weights, self.manifest.action_dim)
