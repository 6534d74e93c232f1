#!/usr/bin/env bash
# The wheel as a robot or a Jetson installs it (docs/JETSON.md): built from this checkout, installed
# with Python 3.10 into a fresh venv with only [runtime] and [sim], and run from a directory outside
# the checkout. It must find its robots, calibration and demo policy as package data, drive the
# virtual firmware with the shipped int8 policy, evaluate it on the simulated arm, and have no torch
# and no top-level `firmware` or `tui` module. Run by .ci/run after `make test`, and as `make test-wheel`.
#
# Environment: UV (default .venv/bin/uv, which `make test` installs), EDGEVLA_PY310 (a Python 3.10
# interpreter; default the newest pyenv 3.10, else python3.10 on PATH, else one uv provides).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
UV=${UV:-$REPO/.venv/bin/uv}
WORK=$(mktemp -d -t edgevla-wheel-XXXXXX)
FIRMWARE_PID=
cleanup() {
    if [[ -n $FIRMWARE_PID ]]; then kill "$FIRMWARE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "check_wheel_install: $*" >&2
    exit 1
}
step() { echo "== $* ($SECONDS s)"; }

python310() {
    if [[ -n ${EDGEVLA_PY310:-} ]]; then
        echo "$EDGEVLA_PY310"
    elif command -v pyenv >/dev/null && compgen -G "$(pyenv root)/versions/3.10.*/bin/python" >/dev/null; then
        ls -d "$(pyenv root)"/versions/3.10.*/bin/python | sort -V | tail -1
    elif command -v python3.10 >/dev/null; then
        command -v python3.10
    else
        echo 3.10
    fi
}

[[ -x $UV ]] || fail "no uv at $UV: run \`make venv\` first, or set UV"
step "building the sdist and, from it, the wheel"
"$UV" build -q --out-dir "$WORK/dist" "$REPO"
WHEEL=$(ls "$WORK"/dist/edgevla-*.whl)

step "installing $(basename "$WHEEL")[runtime,sim] with Python 3.10"
"$UV" venv -q -p "$(python310)" "$WORK/venv"
BIN=$WORK/venv/bin
"$UV" pip install -q -p "$BIN/python" "$WHEEL[runtime,sim]"
"$BIN/python" -c 'import sys; assert sys.version_info[:2] == (3, 10), sys.version'

mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"  # nothing of the checkout is importable or readable from here

step "the robot-side install has no torch and one namespace"
if "$BIN/python" -c 'import torch' 2>/dev/null; then fail "torch is importable in the [runtime,sim] venv"; fi
SITE=$("$BIN/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for name in firmware tui hardware calibration recipes; do
    if compgen -G "$SITE/$name*" >/dev/null; then fail "the wheel installs a top-level '$name' in $SITE"; fi
done
POLICY=$("$BIN/python" -c 'from edgevla.paths import assets_dir; print(assets_dir() / "small-reach" / "onnx-int8")')
[[ $POLICY == "$SITE"/edgevla/* && -f $POLICY/manifest.json ]] || fail "no shipped int8 policy in the wheel ($POLICY)"

step "edgevla firmware serve + edgevla run with the shipped int8 policy"
"$BIN/edgevla" firmware serve --robot so101_follower --link "$WORK/follower" >"$WORK/firmware.log" 2>&1 &
FIRMWARE_PID=$!
for _ in $(seq 100); do
    grep -q '^ready' "$WORK/firmware.log" && break
    kill -0 "$FIRMWARE_PID" 2>/dev/null || fail "firmware serve ended: $(cat "$WORK/firmware.log")"
    sleep 0.2
done
grep -q '^ready' "$WORK/firmware.log" || fail "firmware serve did not get ready in 20 s"
"$BIN/edgevla" run --robot so101_follower --port "$WORK/follower" --policy "$POLICY" \
    --task "touch the red cube" --camera front=synthetic --duration 4 --stats-json run.json
"$BIN/python" -c 'import json; s = json.load(open("run.json")); assert s["chunks"] >= 1, s'

step "edgevla eval --episodes 2 and edgevla demo on the simulated arm"
"$BIN/edgevla" eval --policy "$POLICY" --episodes 2
"$BIN/edgevla" demo --episodes 1 --gif demo.gif
[[ -s demo.gif ]] || fail "edgevla demo wrote no camera view"
step "the wheel installs and runs without the checkout"
