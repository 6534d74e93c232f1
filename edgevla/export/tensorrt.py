"""TensorRT engines from an artifact: built here when TensorRT is installed, otherwise the exact
trtexec command lines and a how-to are written for the target machine (a Jetson: JetPack 6.x
ships TensorRT 10.3 and trtexec at /usr/src/tensorrt/bin/trtexec).

Shapes are static in the artifact, so no optimisation profiles are needed. INT8 uses the explicit
QDQ scales of an int8-static artifact (TensorRT 10 deprecates implicit calibration).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.export.fusion import RECORD as FUSION_RECORD
from edgevla.runtime.artifact import read_artifact

TRTEXEC_PATHS = ("trtexec", "/usr/src/tensorrt/bin/trtexec")
PRECISION_FLAGS = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}


def trtexec_commands(
    art: Path, out: Path, precision: str, workspace_mb: int, trtexec: str = "trtexec"
) -> list[list[str]]:
    """One trtexec command per graph: ONNX in, serialized engine (.plan) and a timing line out."""
    manifest = read_artifact(art)
    if precision == "int8" and manifest.precision != "int8-static":
        raise EdgevlaError(
            f"{art} is {manifest.precision}: TensorRT INT8 needs the QDQ scales of an int8-static artifact "
            "(edgevla quantize --method int8-static --calibration DATASET)"
        )
    if manifest.precision == "int8-dynamic":
        raise EdgevlaError(
            f"{art} is int8-dynamic (ORT CPU operators TensorRT lacks): use the fp32 or int8-static artifact"
        )
    if (art / FUSION_RECORD).is_file():
        raise EdgevlaError(
            f"{art} was fused for ONNX Runtime (export onnx --optimize: contrib ops TensorRT lacks): "
            "export it again without --optimize for TensorRT"
        )
    commands = []
    for graph, filename in manifest.graphs.items():
        commands.append(
            [
                trtexec,
                f"--onnx={art / filename}",
                f"--saveEngine={out / (graph + '.plan')}",
                f"--memPoolSize=workspace:{workspace_mb}",
                *PRECISION_FLAGS[precision],
                f"--timingCacheFile={out / 'timing.cache'}",
            ]
        )
    return commands


def howto(commands: list[list[str]], precision: str) -> str:
    lines = "\n".join(shlex.join(c) for c in commands)
    return f"""# TensorRT engines for this artifact ({precision})

Run on the target (engines are specific to the GPU and the TensorRT version that built them):

```
{lines}
```

On a Jetson, trtexec lives in /usr/src/tensorrt/bin/. Each command prints the engine's latency
("GPU Compute Time: ... median"); a chunk costs one context call (or none, when a dual-system
runtime reuses a cached context), one state call and the head calls (flow: num_steps).
To run the policy with TensorRT from Python, the edgevla runtime uses ONNX Runtime's TensorRT
execution provider on the artifact itself (`--providers tensorrt`), which builds and caches the
same engines; the .plan files are for trtexec timing and for custom C++ runtimes.
"""


def build_engines(art: str | Path, out: str | Path, precision: str, workspace_mb: int = 2048) -> str:
    """Build the engines when trtexec or the TensorRT Python API is present; always write the recipe."""
    art, out = Path(art), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trtexec = next((p for p in TRTEXEC_PATHS if shutil.which(p)), None)
    commands = trtexec_commands(art, out, precision, workspace_mb, trtexec or "trtexec")
    (out / "trtexec.sh").write_text("#!/bin/sh\nset -e\n" + "\n".join(shlex.join(c) for c in commands) + "\n")
    (out / "trtexec.sh").chmod(0o755)
    (out / "HOWTO.md").write_text(howto(commands, precision))
    if trtexec is not None:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            (out / (Path(command[2].split("=", 1)[1]).stem + ".log")).write_text(
                result.stdout + result.stderr
            )
            if result.returncode != 0:
                raise EdgevlaError(f"trtexec failed on {command[1]} (see {out}/*.log)")
        return f"built {len(commands)} engines in {out} with {trtexec}"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return (
            f"TensorRT is not installed here: wrote {out / 'trtexec.sh'} and {out / 'HOWTO.md'}; "
            "run them on the target machine"
        )
    for command in commands:
        build_with_python_api(
            Path(command[1].split("=", 1)[1]), Path(command[2].split("=", 1)[1]), precision, workspace_mb
        )
    return f"built {len(commands)} engines in {out} with the TensorRT Python API"


def build_with_python_api(onnx_path: Path, plan: Path, precision: str, workspace_mb: int) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgevlaError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EdgevlaError(f"TensorRT could not build an engine from {onnx_path}")
    plan.write_bytes(bytes(engine))
