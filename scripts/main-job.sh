#!/usr/bin/env bash
# The main job (README): for now, generate a small Mixtral-shaped GGUF file with the `gguf` package and print it
# with `smoe info` (the converter and the model runner replace this in later issues).
# SMOE_BUILD_DIR (default build) names the build directory, SMOE_VENV (default build/venv) the Python venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bd=${SMOE_BUILD_DIR:-build}
py=${SMOE_VENV:-build/venv}/bin/python
[ -x "$bd/tools/smoe" ] || { echo "main-job: $bd/tools/smoe missing; run: meson setup $bd && ninja -C $bd" >&2; exit 1; }
"$py" tests/gen/gen_demo_gguf.py "$bd/demo.gguf"
"$bd/tools/smoe" info "$bd/demo.gguf"
