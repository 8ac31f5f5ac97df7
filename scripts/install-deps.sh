#!/usr/bin/env bash
# Installs the Debian 12 packages smoe needs to build and test (idempotent: does nothing when all are present),
# then the Python venv for reference checks under ${SMOE_VENV:-build/venv}.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  build-essential meson ninja-build pkg-config   # build
  libjansson-dev                                 # JSON (HF config, safetensors headers)
  libcmocka-dev                                  # unit test framework
  clang llvm                                     # libFuzzer targets
  libvulkan-dev glslc spirv-tools                # Vulkan backend, shaders
  mesa-vulkan-drivers vulkan-validationlayers    # lavapipe (CPU Vulkan driver) for tests
  python3 python3-venv                           # reference checks
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

venv=${SMOE_VENV:-build/venv}
stamp="$venv/.smoe-requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s scripts/requirements.txt "$stamp"; then
  echo "install-deps: creating Python venv $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt "$stamp"
fi
