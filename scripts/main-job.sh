#!/usr/bin/env bash
# The main job (README): generate a tiny Mixtral Hugging Face checkpoint (sharded safetensors, the real tokenizer),
# convert it to GGUF with `smoe convert` (the MoE-aware `auto` mix) and print the result with `smoe info`.
# SMOE_BUILD_DIR (default build) names the build directory, SMOE_VENV (default build/venv) the Python venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bd=${SMOE_BUILD_DIR:-build}
py=${SMOE_VENV:-build/venv}/bin/python
[ -x "$bd/tools/smoe" ] || { echo "main-job: $bd/tools/smoe missing; run: meson setup $bd && ninja -C $bd" >&2; exit 1; }
"$py" tests/gen/gen_tiny_mixtral.py "$bd/tiny-mixtral-hf" --preset tiny --dtype bf16 --shards 2
"$bd/tools/smoe" convert "$bd/tiny-mixtral-hf" -o "$bd/tiny-mixtral-auto.gguf" --type auto
"$bd/tools/smoe" info "$bd/tiny-mixtral-auto.gguf"
