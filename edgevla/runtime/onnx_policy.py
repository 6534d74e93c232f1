"""OnnxPolicy: an exported artifact run by ONNX Runtime, numpy and `tokenizers` only (no torch).

One chunk = one prefix-graph call + `num_steps` denoise-graph calls; the Euler loop and RTC
guidance run in numpy between the calls (`sampler.py`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError, first_line
from edgevla.policy_io import Guidance, Observation, Policy
from edgevla.runtime.artifact import MANIFEST, STATS, TOKENIZER, Manifest, check_graph_shapes, read_artifact
from edgevla.runtime.npz import read_npz
from edgevla.runtime.preprocess import MeanStd, Preprocessor, TaskTokenizer
from edgevla.runtime.sampler import GuidanceTarget, euler_chunk, time_embedding

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


def open_session(path: Path, providers: list[str], threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Without ORT's CPU arena, freed activations go back to the allocator: the 450M int8 artifact
    # measured 1.29 GB peak RSS over 3 chunks with the arena (it keeps growing), < 1 GB without.
    options.enable_cpu_mem_arena = False
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # noqa: BLE001 - ORT raises its own untyped errors for bad graphs
        raise EdgevlaError(
            f"{path} is not a loadable ONNX graph ({first_line(err)}); export it again"
        ) from err


def declared_shapes(prefix, denoise) -> dict[str, dict[str, list]]:
    """graph -> tensor -> shape, for the inputs and outputs of the two ONNX Runtime sessions."""
    return {
        graph: {arg.name: list(arg.shape) for arg in session.get_inputs() + session.get_outputs()}
        for graph, session in (("prefix", prefix), ("denoise", denoise))
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


class OnnxPolicy(Policy):
    """An exported artifact behind the runtime `Policy` interface."""

    def __init__(
        self, art: str | Path, providers: list[str] | None = None, threads: int = 0, seed: int | None = None
    ):
        self.art = Path(art)
        self.manifest = manifest = read_artifact(self.art)
        self.providers = pick_providers(providers)
        self.prefix = open_session(self.art / manifest.graphs["prefix"], self.providers, threads)
        self.denoise = open_session(self.art / manifest.graphs["denoise"], self.providers, threads)
        check_graph_shapes(manifest, self.art / MANIFEST, declared_shapes(self.prefix, self.denoise))
        self.pre = preprocessor_of(manifest, self.art)
        self.rng = np.random.default_rng(seed)
        self.spec = self.pre.io.spec(
            manifest.name,
            {"backend": "onnx", "precision": manifest.precision, "providers": self.prefix.get_providers()},
        )

    @property
    def noise_shape(self) -> tuple[int, int]:
        return (self.manifest.chunk_size, self.manifest.max_action_dim)

    def time_embedding(self, t: float) -> np.ndarray:
        m = self.manifest
        return time_embedding(t, m.expert_hidden_size, m.min_period, m.max_period)

    def encode(self, obs: Observation) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Preprocess `obs` and run the prefix graph: (its feed, [prefix_k, prefix_v, prefix_mask])."""
        inputs = self.pre(obs)
        feed = {
            "images": inputs.images[None],
            "image_masks": inputs.image_masks[None],
            "tokens": inputs.tokens[None],
            "token_mask": inputs.token_mask[None],
            "state": inputs.state[None],
        }
        return feed, self.prefix.run(None, feed)

    @staticmethod
    def denoise_feed(
        x_t: np.ndarray, time_emb: np.ndarray, prefix: list[np.ndarray]
    ) -> dict[str, np.ndarray]:
        prefix_k, prefix_v, prefix_mask = prefix
        return {
            "x_t": x_t,
            "time_emb": time_emb,
            "prefix_k": prefix_k,
            "prefix_v": prefix_v,
            "prefix_mask": prefix_mask,
        }

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        _, prefix = self.encode(obs)
        if noise is None:
            noise = self.rng.standard_normal(self.noise_shape, dtype=np.float32)
        noise = self.pre.check_noise(noise)[None]

        def velocity(x_t: np.ndarray, time_emb: np.ndarray) -> np.ndarray:
            return self.denoise.run(None, self.denoise_feed(x_t, time_emb, prefix))[0]

        target = None if guidance is None else self._guidance(guidance)
        chunk = euler_chunk(velocity, noise, self.manifest.num_steps, self.time_embedding, target)
        return self.pre.postprocess(chunk[0])

    def _guidance(self, guidance: Guidance) -> GuidanceTarget:
        actions, weights = self.pre.guidance(guidance.actions, guidance.weights)
        return GuidanceTarget(actions, weights, self.manifest.action_dim)
