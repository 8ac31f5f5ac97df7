#!/usr/bin/env bash
# The main job (README): generate a tiny deterministic Mixtral Hugging Face checkpoint (sharded safetensors, the real
# Mixtral tokenizer), convert it to GGUF with `smoe convert` (the MoE-aware `auto` mix), show it with `smoe info`,
# then run it: a greedy completion and a chat answer, streamed. (Random weights: the text is gibberish, the pipeline
# is the real one. With a real checkpoint: `smoe convert Mixtral-8x7B-Instruct-v0.1/ -o mixtral.gguf --type auto`.)
# SMOE_BUILD_DIR (default build) names the build directory, SMOE_VENV (default build/venv) the Python venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bd=${SMOE_BUILD_DIR:-build}
py=${SMOE_VENV:-build/venv}/bin/python
[ -x "$bd/tools/smoe" ] || { echo "main-job: $bd/tools/smoe missing; run: meson setup $bd && ninja -C $bd" >&2; exit 1; }
"$py" tests/gen/gen_tiny_mixtral.py "$bd/tiny-mixtral-hf" --preset tiny --dtype bf16 --shards 2 --residual-gain 0.25
"$bd/tools/smoe" convert "$bd/tiny-mixtral-hf" -o "$bd/tiny-mixtral-auto.gguf" --type auto
"$bd/tools/smoe" info "$bd/tiny-mixtral-auto.gguf" -n 12
echo "== smoe run (greedy completion)"
"$bd/tools/smoe" run -m "$bd/tiny-mixtral-auto.gguf" -p "The quick brown fox" -n 24 --temp 0 -c 256
echo "== smoe run --chat (sampled, seed 42)"
"$bd/tools/smoe" run -m "$bd/tiny-mixtral-auto.gguf" --chat --system "Answer briefly." -p "Quelle heure est-il ?" \
  -n 24 --seed 42 -c 256
