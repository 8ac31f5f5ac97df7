#!/usr/bin/env bash
# compare-llamacpp.sh - smoe vs llama.cpp on the CPU, side by side, on THE SAME GGUF files and thread count.
#
# 1. generates a Mixtral-shaped Hugging Face checkpoint of >= 1 GB per type (tests/gen/gen_tiny_mixtral.py, preset
#    bench: hidden 1024, 8 experts, top-2, FFN 3584; LAYERS layers, bf16) unless it exists;
# 2. converts it with `smoe convert` to each type (default q8_0 q4_0 q4_k_m) unless the file exists;
# 3. for each file, runs `llama-bench -m FILE -p PP -n TG -t N -r REPS -o csv` and `smoe bench` with the same
#    arguments, ROUNDS times, alternating which goes first (the machine may be shared: interleaving spreads the
#    noise over both), and logs `uptime` before each run;
# 4. prints a table of tokens/s (mean +- stddev of the per-round means) and the ratio smoe / llama.cpp; for generation
#    also each tool's fraction of the physical limit: memory read bandwidth (bench/membw, measured here with the same
#    thread count) / weight bytes read per token (what `smoe bench` reports as active bytes: attention, router,
#    output and the experts used).
#
# usage: bench/compare-llamacpp.sh [-l LLAMA_BUILD] [-S LLAMA_SRC] [-P LIB_DIR] [-s SMOE_BUILD] [-d DATA_DIR]
#                                  [-t THREADS] [-r REPS] [-R ROUNDS] [-L LAYERS] [-p PP] [-n TG] [-T "q8_0 q4_0 q4_k_m"]
#   -l  llama.cpp build directory with bin/llama-bench (default /opt/llama.cpp/build)
#   -P  a directory put first on llama-bench's LD_LIBRARY_PATH (e.g. a libggml-cpu.so built with other flags)
#   -S  llama.cpp source directory: build it into -l first (cmake, Release, GGML_NATIVE=ON) if llama-bench is missing
#   -s  smoe build directory with tools/smoe (default: build/ next to this script's parent)
#   -d  where the checkpoint, the GGUF files and the logs go (default /tmp/smoe-bench)
# The llama.cpp commit is printed from `git log -1` of LLAMA_SRC, or of $LLAMA_GIT (default: the mirror
# /work/.mirror/unslothai+llama.cpp/repo) when the source tree is not a git checkout.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
llama_build=/opt/llama.cpp/build
llama_src=""
lib_dir=""
smoe_build="$root/build"
data=/tmp/smoe-bench
threads="$(nproc)"
reps=5
rounds=1
layers=20
pp=128
tg=32
types="q8_0 q4_0 q4_k_m"

while getopts "l:S:P:s:d:t:r:R:L:p:n:T:h" opt; do
  case "$opt" in
    l) llama_build="$OPTARG" ;;
    P) lib_dir="$OPTARG" ;;
    S) llama_src="$OPTARG" ;;
    s) smoe_build="$OPTARG" ;;
    d) data="$OPTARG" ;;
    t) threads="$OPTARG" ;;
    r) reps="$OPTARG" ;;
    R) rounds="$OPTARG" ;;
    L) layers="$OPTARG" ;;
    p) pp="$OPTARG" ;;
    n) tg="$OPTARG" ;;
    T) types="$OPTARG" ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done

llama_bench="$llama_build/bin/llama-bench"
smoe="$smoe_build/tools/smoe"
if [[ ! -x "$llama_bench" && -n "$llama_src" ]]; then
  echo "== building llama.cpp from $llama_src into $llama_build"
  cmake -S "$llama_src" -B "$llama_build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$llama_build" -j "$(nproc)" --target llama-bench >/dev/null
fi
[[ -x "$llama_bench" ]] || { echo "no llama-bench at $llama_bench (give -l, or -S to build it)" >&2; exit 1; }
[[ -x "$smoe" ]] || { echo "no smoe at $smoe (build smoe, or give -s)" >&2; exit 1; }
# where to read the llama.cpp commit from: the source tree if it is a git checkout, else a mirror of the repository
llama_git=""
for c in "$llama_src" "$llama_build/.." /opt/llama.cpp "${LLAMA_GIT:-/work/.mirror/unslothai+llama.cpp/repo}"; do
  if [[ -n "$c" ]] && git -C "$c" rev-parse >/dev/null 2>&1; then llama_git="$c"; break; fi
done

python="${SMOE_PYTHON:-$root/build/venv/bin/python}"
[[ -x "$python" ]] || python=python3
mkdir -p "$data"
hf="$data/hf-bench-l$layers"
if [[ ! -f "$hf/config.json" ]]; then
  echo "== generating the checkpoint ($layers layers) in $hf"
  "$python" "$root/tests/gen/gen_tiny_mixtral.py" "$hf" --preset bench --layers "$layers" --dtype bf16 --shards 4
fi

echo "== machine"
lscpu | grep -E "Model name|^CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|L3 cache" | sed 's/^/   /'
echo "   memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
if [[ -n "$llama_git" ]]; then echo "   llama.cpp: $(git -C "$llama_git" log -1 --format='%H %cd' --date=short) (git -C $llama_git)"; fi
if [[ -n "$lib_dir" ]]; then echo "   llama.cpp libraries first from: $lib_dir"; fi
echo "   smoe: $(git -C "$root" log -1 --format='%H %cd' --date=short)"
echo "   threads $threads, -p $pp -n $tg, $reps reps x $rounds rounds; $(date -u '+%Y-%m-%d %H:%M UTC')"

membw="$smoe_build/bench/membw"
bw=0
if [[ -x "$membw" ]]; then
  bw=$("$membw" -m 2048 -t "$threads" -r 5 | awk -F, 'NR == 2 {print $3}')
  echo "   memory read bandwidth, $threads threads: $bw GB/s (best of 5 passes over 2 GiB, bench/membw)"
fi

results="$data/results.csv"
echo "tool,type,round,test,ts,load" >"$results"
active="$data/active.csv"
echo "type,active_bytes" >"$active"
for t in $types; do
  gguf="$data/bench-l$layers-$t.gguf"
  if [[ ! -f "$gguf" ]]; then
    echo "== converting to $t: $gguf"
    "$smoe" convert "$hf" -o "$gguf" --type "$t" --quiet
  fi
  size=$(stat -L -c %s "$gguf")
  echo "== $t: $gguf ($((size / 1048576)) MiB)"
  for ((r = 0; r < rounds; r++)); do
    order="llama smoe"
    ((r % 2 == 1)) && order="smoe llama"
    for tool in $order; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      log="$data/$tool-$t-r$r.csv"
      if [[ $tool == llama ]]; then
        LD_LIBRARY_PATH="${lib_dir:+$lib_dir:}${LD_LIBRARY_PATH:-}" \
          "$llama_bench" -m "$gguf" -p "$pp" -n "$tg" -t "$threads" -r "$reps" -o csv >"$log" 2>"$log.err"
        "$python" - "$log" "$t" "$r" "$load" >>"$results" <<'EOF'
import csv, sys
path, typ, rnd, load = sys.argv[1:5]
for row in csv.DictReader(open(path)):
    test = "pp%s" % row["n_prompt"] if int(row["n_gen"]) == 0 else "tg%s" % row["n_gen"]
    print("llama.cpp,%s,%s,%s,%s,%s" % (typ, rnd, test, row["avg_ts"], load))
EOF
      else
        "$smoe" bench -m "$gguf" -p "$pp" -n "$tg" -t "$threads" -r "$reps" -o csv >"$log" 2>"$log.err"
        "$python" - "$log" "$t" "$r" "$load" >>"$results" <<'EOF'
import csv, sys
path, typ, rnd, load = sys.argv[1:5]
for row in csv.DictReader(open(path)):
    print("smoe,%s,%s,%s,%s,%s" % (typ, rnd, row["test"], row["avg_ts"], load))
EOF
        awk -F, -v t="$t" 'NR == 2 {print t "," $5}' "$log" >>"$active"
      fi
      echo "   round $r $tool done (load before: $load)"
    done
  done
done

echo
"$python" - "$results" "$threads" "$active" "$bw" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
threads = sys.argv[2]
active = {r["type"]: float(r["active_bytes"]) for r in csv.DictReader(open(sys.argv[3]))}
bw = float(sys.argv[4]) * 1e9
by = {}
for r in rows:
    by.setdefault((r["type"], r["test"], r["tool"]), []).append(float(r["ts"]))
def fmt(v):
    if not v: return "-"
    m = statistics.mean(v)
    return "%.2f ± %.2f" % (m, statistics.stdev(v)) if len(v) > 1 else "%.2f" % m
print("| type | test | threads | llama.cpp t/s | smoe t/s | smoe / llama.cpp | bound t/s | llama.cpp / bound | smoe / bound |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
seen = []
for r in rows:
    k = (r["type"], r["test"])
    if k in seen: continue
    seen.append(k)
    l, s = by.get(k + ("llama.cpp",), []), by.get(k + ("smoe",), [])
    ratio = "%.2fx" % (statistics.mean(s) / statistics.mean(l)) if l and s else "-"
    bound = bw / active[k[0]] if k[1].startswith("tg") and bw > 0 and active.get(k[0]) else 0
    frac = lambda v: "%.0f%%" % (100 * statistics.mean(v) / bound) if v and bound else "-"
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (k[0], k[1], threads, fmt(l), fmt(s), ratio,
          "%.1f" % bound if bound else "-", frac(l), frac(s)))
loads = [float(r["load"]) for r in rows]
print("\nload average (1 min) before the runs: min %.2f, max %.2f" % (min(loads), max(loads)))
EOF
