#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run). Installs what is missing, then:
#   1. release-ish build (build/): meson unit/op/e2e tests and the Python reference checks (also the end-to-end ones
#      on Vulkan/lavapipe, and on CUDA's host side over the fake runtime of tests/cuda-fake when CUDA is built; the
#      CUDA kernels themselves run in the meson tests on the emulator of tests/cuda-emu)
#   2. sanitizer build (build-asan/, -Db_sanitize=address,undefined): the same meson tests
#   3. fuzz build (build-fuzz/, clang + libFuzzer): every fuzz target for a bounded time
# Ends with one line: "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
FUZZ_SECONDS=${SMOE_FUZZ_SECONDS:-60}

scripts/install-deps.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
py=build/venv/bin/python
# install-deps.sh installs lavapipe (mesa-vulkan-drivers): the Vulkan tests must run, not skip, when no device shows
export SMOE_VK_REQUIRE=1

passed=0; failed=0
count_meson() { # $1: build dir; counts results from its testlog.json
  local log="$1/meson-logs/testlog.json"
  [ -f "$log" ] || { failed=$((failed + 1)); return; }
  local p f
  read -r p f < <("$py" - "$log" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL", "SKIP"): p += r != "SKIP"
    else: f += 1
print(p, f)
PY
)
  passed=$((passed + p)); failed=$((failed + f))
}

count_pytest() { # $1: junit xml
  local p f
  read -r p f < <("$py" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
    s = r if r.tag == "testsuite" else r.find("testsuite")
    t, fl, er, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    print(t - fl - er - sk, fl + er)
except Exception:
    print(0, 1)
PY
)
  passed=$((passed + p)); failed=$((failed + f))
}

build() { # $1: dir, rest: meson options
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@" >/dev/null || return 1; fi
  ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -40 "$dir.ninja.log"; return 1; }
}

echo "== build (build/)"
if build build; then
  echo "== meson tests (build/)"
  meson test -C build --print-errorlogs --num-processes 2
  count_meson build
  echo "== python reference checks"
  SMOE_BUILD_DIR=$root/build "$py" -m pytest -q tests/python -p no:cacheprovider --junitxml=build/pytest.xml
  count_pytest build/pytest.xml
  if build/tools/smoe info --devices 2>/dev/null | grep -q '^vulkan'; then
    echo "== end to end on Vulkan (build/, SMOE_BACKEND=vulkan: weights, KV cache and graphs on the device)"
    SMOE_BACKEND=vulkan SMOE_BUILD_DIR=$root/build "$py" -m pytest -q tests/python/test_e2e.py -p no:cacheprovider \
      --junitxml=build/pytest-vulkan.xml
    count_pytest build/pytest-vulkan.xml
  fi
  if [ -x build/tests/smoe-cuda-fake ]; then
    echo "== end to end on CUDA's host side (build/, SMOE_BACKEND=cuda0 on the fake CUDA runtime of tests/cuda-fake)"
    SMOE_BACKEND=cuda0 SMOE_BUILD_DIR=$root/build SMOE_CLI=$root/build/tests/smoe-cuda-fake \
      SMOE_EVAL=$root/build/tests/e2e-eval-cuda-fake "$py" -m pytest -q tests/python/test_e2e.py -p no:cacheprovider \
      --junitxml=build/pytest-cuda-fake.xml
    count_pytest build/pytest-cuda-fake.xml
  fi
else
  failed=$((failed + 1))
fi

echo "== sanitizer build (build-asan/)"
if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 4
  count_meson build-asan
else
  failed=$((failed + 1))
fi

echo "== fuzz (build-fuzz/, ${FUZZ_SECONDS}s per target)"
if build build-fuzz -Dfuzz=true -Dtests=false --native-file scripts/clang.ini; then
  for t in build-fuzz/tests/fuzz/fuzz-*; do
    [ -f "$t" ] && [ -x "$t" ] || continue  # skip the fuzz-*.p object folders
    name=$(basename "$t")
    corpus=$(mktemp -d)
    seeds=tests/fuzz/corpus/${name#fuzz-}
    if "$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 \
        "$corpus" "$seeds" >"build-fuzz/$name.log" 2>&1; then
      echo "fuzz $name: clean ($(grep -c '' "build-fuzz/$name.log") log lines)"; passed=$((passed + 1))
    else
      echo "fuzz $name: FAILED"; tail -30 "build-fuzz/$name.log"; failed=$((failed + 1))
    fi
    rm -rf "$corpus"
  done
else
  failed=$((failed + 1))
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
