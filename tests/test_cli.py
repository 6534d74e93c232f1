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
