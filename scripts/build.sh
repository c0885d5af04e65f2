#!/usr/bin/env bash
# Configures and builds xdc. Usage: scripts/build.sh [--sanitize|--tsan] [TARGET...]
#   (default)   build/        RelWithDebInfo
#   --sanitize  build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer
#   --tsan      build-tsan/   ThreadSanitizer (scripts/test-tsan.sh builds and runs its suites)
# With no TARGET, builds everything (daemon, tools and tests).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
flags=()
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  flags=(-DXDC_SANITIZE=ON)
  shift
elif [ "${1:-}" = "--tsan" ]; then
  dir=build-tsan
  flags=(-DXDC_TSAN=ON)
  shift
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$dir" -j2 "$@"
