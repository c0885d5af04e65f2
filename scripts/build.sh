#!/usr/bin/env bash
# Configures and builds xdc. Usage: scripts/build.sh [--sanitize] [TARGET...]
#   (default)   build/        RelWithDebInfo
#   --sanitize  build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer
# With no TARGET, builds everything (daemon, tools and tests).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
flags=()
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  flags=(-DXDC_SANITIZE=ON)
  shift
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$dir" -j2 "$@"
