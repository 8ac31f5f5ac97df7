#!/usr/bin/env bash
# bench-convert.sh - `smoe convert` throughput (MB/s of input safetensors) and peak resident memory on a generated
# Mixtral-shaped BF16 checkpoint of >= 2 GB (tests/gen/gen_tiny_mixtral.py --preset bench --layers 12: hidden 1024,
# 8 experts of 3584, vocab 32000, 2.3 GB), one line per output type.
#
# usage: bench/bench-convert.sh [BUILD_DIR] [WORK_DIR] [TYPES...]
#   BUILD_DIR  meson build folder with tools/smoe (default: build)
#   WORK_DIR   where the checkpoint and outputs go (default: /tmp/smoe-bench-convert; the checkpoint is kept there
#              for reruns, never in the repository)
#   TYPES      output types (default: f16 q4_0)
# env: SMOE_THREADS (default: all CPUs), SMOE_PY (python with numpy/safetensors/mistral-common: build/venv/bin/python)
#
# "MB per CPU s" divides the input by the user + system CPU time: on a loaded machine it says what the wall clock
# cannot (wall-clock MB/s = that times the CPUs the process actually got).
# Peak RSS is /usr/bin/time -v's "Maximum resident set size": it counts the pages of the mmap'd source the process
# has touched and not yet released, so it shows that the converter drops each source tensor's pages once its rows
# are written. Runs read a warm page cache (the checkpoint was just generated or read by the previous run).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WORK=${2:-/tmp/smoe-bench-convert}
shift $(( $# > 2 ? 2 : $# )) || true
TYPES=("$@")
[ ${#TYPES[@]} -gt 0 ] || TYPES=(f16 q4_0)
PY=${SMOE_PY:-build/venv/bin/python}
THREADS=${SMOE_THREADS:-0}
SMOE=$BUILD/tools/smoe
[ -x "$SMOE" ] || { echo "bench-convert: $SMOE not built" >&2; exit 1; }

CKPT=$WORK/mixtral-bench-bf16
mkdir -p "$WORK"
if [ ! -f "$CKPT/config.json" ]; then
    echo "generating $CKPT ..." >&2
    "$PY" tests/gen/gen_tiny_mixtral.py "$CKPT" --preset bench --layers 12 --dtype bf16 --shards 4 >&2
fi
IN_BYTES=$(cat "$CKPT"/*.safetensors | wc -c)
cat "$CKPT"/*.safetensors >/dev/null # warm the page cache

echo "# smoe convert: $(basename "$CKPT"), $(awk -v b="$IN_BYTES" 'BEGIN{printf "%.2f GB", b/1e9}') of safetensors," \
     "$(nproc) CPUs, threads=${THREADS} (0 = all), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| type | input MB | output MB | wall s | MB/s (input) | user s | sys s | MB per CPU s | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in "${TYPES[@]}"; do
    OUT=$WORK/out-$t.gguf
    LOG=$WORK/time-$t.txt
    /usr/bin/time -v "$SMOE" convert "$CKPT" -o "$OUT" --type "$t" --threads "$THREADS" --quiet 2>"$LOG" ||
        { cat "$LOG" >&2; exit 1; }
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$LOG")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$LOG")
    usr=$(awk -F': ' '/User time/ {print $2}' "$LOG")
    sys=$(awk -F': ' '/System time/ {print $2}' "$LOG")
    out_bytes=$(wc -c <"$OUT")
    awk -v t="$t" -v ib="$IN_BYTES" -v ob="$out_bytes" -v w="$wall" -v r="$rss" -v u="$usr" -v s="$sys" \
        'BEGIN{printf "| %s | %.0f | %.0f | %.1f | %.0f | %.1f | %.1f | %.0f | %.0f |\n", t, ib/1e6, ob/1e6, w, ib/1e6/w,
               u, s, ib/1e6/(u+s), r/1024}'
    rm -f "$OUT"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
