import os
import signal
import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgevla", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_commands_without_importing_torch():
    code = "import sys; sys.modules['torch'] = None; from edgevla.cli import main; sys.exit(main(['--help']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "bench" in result.stdout


def test_unknown_command_is_one_line_and_nonzero():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown command 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_command_module_imports_another():
    """Commands share arguments through edgevla.cli.args and logic through the library; a group
    package's modules may read the group's own table (bench all lists the benches)."""
    import ast
    from pathlib import Path

    import edgevla.cli

    root = Path(edgevla.cli.__file__).parent
    shared = {"edgevla.cli", "edgevla.cli.args", "edgevla.cli.dispatch"}
    found = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(("edgevla", *path.relative_to(root.parent).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        group = module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [
                f"{module} imports {name}"
                for name in names
                if name.startswith("edgevla.cli") and name not in shared and name != group
            ]
    assert found == []


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`edgevla dataset info DIR | head`: the pipe closes before the command is done writing."""
    from pathlib import Path

    dataset = Path(__file__).resolve().parent / "fixtures" / "lerobot_v30"
    for args in (["dataset", "info", str(dataset)], ["--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first byte: every write fails
        try:
            result = subprocess.run(
                [sys.executable, "-m", "edgevla", *args], stdout=write_end, stderr=subprocess.PIPE, timeout=60
            )
        finally:
            os.close(write_end)
        assert result.returncode == 128 + signal.SIGPIPE and result.stderr == b"", result.stderr.decode()
