"""Lazy subcommand dispatch shared by `edgevla` and its command groups (`bench`, `sim`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from edgevla.errors import EdgevlaError, MissingExtraError

# Top-level module of an optional dependency -> the extra that installs it.
EXTRA_OF_MODULE = {
    "torch": "model",
    "transformers": "model",
    "safetensors": "model",
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "runtime",
    "tokenizers": "runtime",
    "av": "record",
    "pyarrow": "record",
    "PIL": "record",
    "peft": "train",
    "accelerate": "train",
    "bitsandbytes": "gpu",
    "textual": "tui",
    "textual_plotext": "tui",
    "cv2": "cameras",
    "matplotlib": "all",
}


@dataclass(frozen=True)
class Command:
    module: str
    help: str


def _usage(prog: str, commands: dict[str, Command]) -> str:
    width = max((len(name) for name in commands), default=0)
    lines = [f"usage: {prog} COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {cmd.help}" for name, cmd in sorted(commands.items())]
    lines += ["", f"Run '{prog} COMMAND --help' for the options of one command."]
    return "\n".join(lines)


def _fail(prog: str, message: str, code: int = 2) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def dispatch(prog: str, commands: dict[str, Command], argv: list[str]) -> int:
    """Parse `argv` for one of `commands` and run its handler; user errors become one line."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(prog, commands))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        return _fail(prog, f"unknown command '{name}'; run '{prog} --help' for the list")
    try:
        module = importlib.import_module(commands[name].module)
        parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=commands[name].help)
        module.configure(parser)
        args = parser.parse_args(rest)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return int(handler(args) or 0)
    except EdgevlaError as err:
        return _fail(f"{prog} {name}", str(err), err.exit_code)
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top in EXTRA_OF_MODULE:
            return _fail(f"{prog} {name}", str(MissingExtraError(EXTRA_OF_MODULE[top], top)))
        raise
    except KeyboardInterrupt:
        print(f"{prog} {name}: interrupted", file=sys.stderr)
        return 130
