#!/usr/bin/env bash
# bench/device-check.sh - the GPU session's one script (issue 7): build for the local GPU only, run the CUDA op
# tests, the host-side CUDA tests, a synthetic model on CUDA against the CPU (tests/backend-check.c: no Python
# needed), the end-to-end checks on CUDA (needs build/venv), the Vulkan tests on the same GPU when libvulkan is
# found, then `smoe bench --synthetic mixtral-8x7b` on CUDA (all weights; a 16 GB budget) and on Vulkan. Budget:
# under 6 minutes on an H100 when the kernels are fast; every step has its own timeout.
#
# Writes ${OUT:-./out}/device-check.log (everything) and ${OUT:-./out}/results.json (one entry per step: name,
# status pass|fail|skip, seconds, and a note or figures), and the benchmark tables as bench-*.csv (smoe bench -o
# csv: tokens/s, weight GB/s and its fraction of the peak). Exit status: 0 when no step failed.
#
# Environment: PYTHON (default build/venv/bin/python: one with pytest, numpy, safetensors, mistral_common runs the
# transformers end-to-end checks), BENCH_TYPES (default q4_0,q4_k_m,q8_0), NV_ARCHS (default: the local GPU's compute capability from nvidia-smi, else 90), BUILD_DIR
# (default build-device), JOBS (default 16), SKIP_BUILD=1 to reuse an existing build, NCU=0 to skip the Nsight
# Compute profiles at the end (about 2 minutes).
#
# On the lent GPU machine (2026-11-27: nvcc, meson, ninja and a python3 with pytest/numpy/safetensors, but no apt and
# no libjansson/libcmocka/pkg-config/glslc): here, `mkdir -p .dev/debs && cd .dev/debs && apt-get download
# libjansson4 libjansson-dev libcmocka0 libcmocka-dev pkgconf pkgconf-bin libpkgconf3 pkg-config libvulkan1
# libvulkan-dev glslc libshaderc1 spirv-tools libglvnd0 libglx0 libegl1 libopengl0 libx11-6 libxext6 libx11-data
# libxcb1 libxau6 libxdmcp6 libbsd0 libmd0` (the last ones: what NVIDIA's Vulkan driver library links), and a minimal mistral_common in .dev/site (its __init__.py,
# data/tokenizer.model.v1 and a dist-info with a METADATA naming the version) with /.dev/ in .git/info/exclude; then
# run with carry [".dev"]: `for f in .dev/debs/*.deb; do dpkg -x $f /; done; ldconfig; export PATH=$PATH:/usr/local/
# cuda/bin PYTHONPATH=$PWD/.dev/site; PYTHON=python3 OUT=$OUT bench/device-check.sh`. Vulkan there found no device
# with Debian's loader (the ICD json is /usr/share/vulkan/icd.d/nvidia_icd.json): the script now points the loader
# at the json and logs the loader's and ldd's view (the Vulkan section below).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-./out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/device-check.log
: >"$log"
bdir=${BUILD_DIR:-build-device}
jobs=${JOBS:-16}
export PATH=$PATH:/usr/local/cuda/bin
results=()

say() { echo "$*" | tee -a "$log"; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
# step NAME TIMEOUT CMD...: runs CMD (output to the log), records pass/fail and seconds
step() {
  local name=$1 limit=$2; shift 2
  say "== $name: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$? dt=$((SECONDS - t0)) status=pass
  [ $rc -ne 0 ] && status=fail
  [ $rc -eq 124 ] && say "   (timed out after ${limit}s)"
  say "   $name: $status (rc $rc, ${dt}s)"
  results+=("{\"name\": $(json_str "$name"), \"status\": \"$status\", \"rc\": $rc, \"seconds\": $dt}")
  return $rc
}
skip() { # NAME WHY
  say "== $1: SKIPPED ($2)"
  results+=("{\"name\": $(json_str "$1"), \"status\": \"skip\", \"note\": $(json_str "$2")}")
}
write_results() {
  local gpu commit
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  {
    echo "{"
    echo "  \"date\": $(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),"
    echo "  \"gpu\": $(json_str "${gpu:-none}"),"
    echo "  \"commit\": $(json_str "$commit"),"
    echo "  \"nv_archs\": $(json_str "$archs"),"
    echo "  \"steps\": ["
    local i
    for i in "${!results[@]}"; do
      [ "$i" -gt 0 ] && echo ","
      printf '    %s' "${results[$i]}"
    done
    echo
    echo "  ]"
    echo "}"
  } >"$out/results.json"
}

# ---- the local GPU ----
say "device-check $(date -u) in $root"
nvidia-smi >>"$log" 2>&1 || say "nvidia-smi failed (no driver?)"
archs=${NV_ARCHS:-}
if [ -z "$archs" ]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  archs=${cap:-90}
fi
say "GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1); archs: $archs"

# ---- build ----
failed=0
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  if [ ! -f "$bdir/build.ninja" ]; then
    step setup 120 meson setup "$bdir" -Dcuda=enabled "-Dnv_archs=$archs" || failed=1
  else
    step setup 120 meson configure "$bdir" -Dcuda=enabled "-Dnv_archs=$archs" || failed=1
  fi
  [ $failed = 0 ] && { step build 300 ninja -C "$bdir" -j"$jobs" || failed=1; }
fi
if [ $failed != 0 ]; then
  write_results
  say "build failed: see $log"
  exit 1
fi

# ---- CUDA ----
step cuda-host-tests 60 "$bdir/tests/test-cuda-host" || failed=1
step cuda-deq-tests 60 "$bdir/tests/test-cuda-deq" || failed=1
# every op, every type, ragged shapes, against the CPU reference. Passes only if cases actually ran on the backend
# (an absent device shows as "cuda SKIPPED (no device)" and must not count as a pass).
run_ops() { # BACKEND
  "$bdir/tests/test-ops" -b "$1" >"$out/test-ops-$1.txt" 2>&1
  local r=$? ok
  ok=$(grep -c " $1 OK" "$out/test-ops-$1.txt")
  tail -1 "$out/test-ops-$1.txt"
  grep -v " OK$" "$out/test-ops-$1.txt" | head -40
  echo "$ok cases OK on $1"
  [ "$ok" -gt 0 ] || { echo "$1: no case ran"; return 1; }
  return $r
}
export -f run_ops
export bdir out
if ! step cuda-op-tests 240 bash -c 'run_ops cuda0'; then
  failed=1
  # which failures are the fast kernels' (gemv_kernel, gemv_id_kernel): the same tests on the reference kernels
  cp "$out/test-ops-cuda0.txt" "$out/test-ops-cuda0-fast.txt"
  step cuda-op-tests-simple 240 env SMOE_CUDA_SIMPLE=1 bash -c 'run_ops cuda0' || true
  mv "$out/test-ops-cuda0.txt" "$out/test-ops-cuda0-simple.txt"
  mv "$out/test-ops-cuda0-fast.txt" "$out/test-ops-cuda0.txt"
fi
tail -1 "$out/test-ops-cuda0.txt" 2>/dev/null | tee -a "$log"

# end to end with nothing but the library: the synthetic model on cuda0 against the CPU (every weight on the GPU,
# then half), teacher-forced logits within tolerance; the table goes to the log (the device tool brings back at
# most 8 files from $OUT: the log, results.json, three op-test outputs and three benchmark tables)
step cuda-model-check 180 "$bdir/tests/backend-check" -b cuda0 || failed=1
# the same with programmatic dependent launch (Hopper; off by default until the benchmark below shows it pays)
SMOE_CUDA_PDL=1 step cuda-model-check-pdl 180 "$bdir/tests/backend-check" -b cuda0 || failed=1
# end to end on CUDA: the transformers-reference checks with the default backend set to cuda0 (core/devices.c)
py=${PYTHON:-$root/build/venv/bin/python}
if command -v "$py" >/dev/null && "$py" -c 'import pytest, numpy, safetensors, mistral_common' 2>/dev/null; then
  if ! step cuda-e2e 180 env SMOE_BACKEND=cuda0 SMOE_BUILD_DIR="$root/$bdir" "$py" -m pytest -q -x \
    tests/python/test_e2e.py; then
    failed=1
    # the same on the reference kernels (no GEMV/tensor-core/split-attention fast paths, no CUDA graphs)
    step cuda-e2e-simple 180 env SMOE_CUDA_SIMPLE=1 SMOE_CUDA_GRAPHS=0 SMOE_BACKEND=cuda0 \
      SMOE_BUILD_DIR="$root/$bdir" "$py" -m pytest -q -x tests/python/test_e2e.py || true
  fi
else
  skip cuda-e2e "no python ($py) with pytest, numpy, safetensors and mistral_common (scripts/install-deps.sh)"
fi

# ---- Vulkan on the same GPU ----
# The loader finds the NVIDIA driver through its ICD json; when no device shows, point the loader at the json
# directly, and log what the loader says and what the driver library lacks (it needs libglvnd's libGLdispatch)
if [ -f "$bdir/tests/test-vulkan" ] && ! "$bdir/tools/smoe" info --devices 2>/dev/null | grep -q '^vulkan'; then
  for j in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$j" ] || continue
    export VK_DRIVER_FILES=$j VK_ICD_FILENAMES=$j
    say "vulkan: no device at first; VK_DRIVER_FILES=$j: $(tr -d '\n' < "$j" | head -c 300)"
    lib=$(sed -n 's/.*"library_path" *: *"\([^"]*\)".*/\1/p' "$j")
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    say "vulkan: driver library $lib -> ${path:-not found by ldconfig}"
    [ -n "$path" ] && ldd "$path" 2>&1 | grep -i "not found" | tee -a "$log"
    break
  done
  VK_LOADER_DEBUG=error,warn,driver "$bdir/tools/smoe" info --devices 2>&1 | tail -25 >> "$log"
fi
if [ -f "$bdir/tests/test-vulkan" ]; then
  step vulkan-tests 120 "$bdir/tests/test-vulkan" || failed=1
  step vulkan-op-tests 180 bash -c 'run_ops vulkan0' || failed=1
  step vulkan-model-check 180 "$bdir/tests/backend-check" -b vulkan0 || failed=1
else
  skip vulkan "libvulkan/glslc not found at build time"
fi

# ---- benchmark ----
# peak memory bandwidth of the GPU (GB/s), for the fraction-of-peak column: PEAK_GBPS, else by name
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
peak=${PEAK_GBPS:-}
if [ -z "$peak" ]; then
  case "$gpu_name" in
    *H200*) peak=4800 ;;
    *H100*PCIe*) peak=2000 ;;
    *H100*) peak=3350 ;;
    *A100*80GB*) peak=2039 ;;
    *A100*) peak=1555 ;;
    *) peak=0 ;;
  esac
fi
say "peak bandwidth used for the fractions: ${peak} GB/s ($gpu_name)"
peak_arg=()
[ "$peak" != 0 ] && peak_arg=(--peak-gbps "$peak")
smoe=$bdir/tools/smoe
bench() { # NAME TIMEOUT ARGS...: smoe bench -o csv, output kept as $out/NAME.csv
  local name=$1 limit=$2; shift 2
  step "$name" "$limit" bash -c 'set -o pipefail; "$@" | tee "$0"' "$out/$name.csv" "$smoe" bench -o csv "$@"
}
# full-size Mixtral 8x7B shapes, random weights, no file: prefill 512 and decode, with 0, 512 and 4096 tokens of
# context already in the KV cache
bench bench-cuda 300 --synthetic mixtral-8x7b --type "${BENCH_TYPES:-q4_0,q4_k_m,q8_0}" --backend cuda0 -p 512 -n 32 -d 0,512,4096 \
  -r 3 "${peak_arg[@]}" || failed=1
# the decode GEMV on float activations (before the int8/dp4a kernels), side by side in this run: the log has it
SMOE_CUDA_GEMVQ=0 step bench-cuda-float-gemv 150 "$smoe" bench --synthetic mixtral-8x7b --type q4_0,q4_k_m \
  --backend cuda0 -p 0 -n 32 -d 512 -r 3 "${peak_arg[@]}" || failed=1
# without the launch fusions (norm/SwiGLU writing the int8 columns, K/V/Q and gate/up as one launch, the projection
# adding its residual), side by side in this run: the log has it
SMOE_CUDA_FUSE=0 step bench-cuda-unfused 120 "$smoe" bench --synthetic mixtral-8x7b --type q4_0 \
  --backend cuda0 -p 512 -n 32 -d 512 -r 3 "${peak_arg[@]}" || failed=1
# programmatic dependent launch (each kernel's launch and block scheduling overlapping the tail of the one before),
# side by side in this run: the log has it; if it is faster, it becomes the default (cuda-backend.c: pdl)
SMOE_CUDA_PDL=1 step bench-cuda-pdl 120 "$smoe" bench --synthetic mixtral-8x7b --type q4_0 \
  --backend cuda0 -p 512 -n 32 -d 512 -r 3 "${peak_arg[@]}" || failed=1
# a consumer card's budget: 16 GB of weights on the GPU, the other experts in host memory on the CPU
bench bench-cuda-16g 180 --synthetic mixtral-8x7b --type q4_0 --backend cuda0 --gpu-mem 16G -p 0 -n 16 -d 512 \
  -r 2 "${peak_arg[@]}" || failed=1
# Vulkan on the same GPU and shapes, for the ratio to CUDA (issue 8: decode >= 70% of CUDA's)
if "$smoe" info --devices 2>/dev/null | grep -q '^vulkan'; then
  bench bench-vulkan 240 --synthetic mixtral-8x7b --type q4_0 --backend vulkan0 -p 512 -n 32 -d 512 -r 3 \
    "${peak_arg[@]}" || failed=1
else
  skip bench-vulkan "no Vulkan device: libvulkan.so.1 or the NVIDIA ICD (nvidia_icd.json) is missing"
fi

# Where the time goes, kernel by kernel (duration, DRAM and compute throughput), into the log: Nsight Compute over
# 4 layers, graphs off so every kernel is its own launch; decode (after the first 300 launches: past the prompt) and
# prefill (512 tokens). NCU=0 skips it.
if [ "${NCU:-1}" != 0 ] && command -v ncu >/dev/null 2>&1; then
  SMOE_CUDA_GRAPHS=0 step ncu-decode 240 ncu --print-summary per-kernel --launch-skip 300 --launch-count 120 \
    "$smoe" bench --synthetic mixtral-8x7b --layers 4 --type q4_0 --backend cuda0 -p 0 -n 8 -r 1 || true
  SMOE_CUDA_GRAPHS=0 step ncu-prefill 240 ncu --print-summary per-kernel --launch-count 60 \
    "$smoe" bench --synthetic mixtral-8x7b --layers 2 --type q4_0 --backend cuda0 -p 512 -n 0 -r 1 || true
else
  skip ncu "ncu not found (or NCU=0)"
fi

write_results
say "results: $out/results.json; log: $log"
exit $failed
