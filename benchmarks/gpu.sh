#!/usr/bin/env bash
# Every GPU figure of docs/PERFORMANCE.md in one run of at most 8 minutes; on a machine without a
# GPU, one line saying so and exit 0. Arguments go to benchmarks/gpu_check.py (--out, --budget, --runs).
#   benchmarks/gpu.sh --out gpu-report.json
set -u
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$(command -v python3 || command -v python)}"
[ -x "$here/../.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && python="$here/../.venv/bin/python"
# 480 s hard stop for the whole run (stages share a 450 s budget inside); the children die with it
exec timeout --kill-after=10 480 "$python" "$here/gpu_check.py" "$@"
