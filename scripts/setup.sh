#!/usr/bin/env bash
# Fresh Debian 12 machine -> installed dependencies, a build in build/, and the main job run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
scripts/main-job.sh
