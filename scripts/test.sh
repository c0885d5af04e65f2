#!/usr/bin/env bash
# Installs what is missing, model-checks the handover protocol with spin (and checks that spin
# rejects the broken variant), builds, and runs every test (ctest): unit, integration over the
# embedded Kafka, and end-to-end with real xdcd processes killed with SIGKILL. Then builds with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite again.
#
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=1
if [ "${1:-}" = "--no-sanitize" ]; then sanitize=0; fi

scripts/install-deps.sh

echo "== model check of the handover protocol (spin; models/README.md)"
scripts/check-models.sh

echo "== build (RelWithDebInfo) and test"
scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600)

if [ "$sanitize" -eq 1 ]; then
  echo "== build with ASan + UBSan and test"
  scripts/build.sh --sanitize
  # Child xdcd processes inherit these, so their leaks and UB fail the tests too.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # The normal pass runs the full 100,000 randomized convergence cases; under the sanitizers
  # (several times slower) a smaller sample checks the same code for memory errors and UB.
  export XDC_PROPERTY_CASES="${XDC_PROPERTY_CASES_SANITIZED:-20000}"
  (cd build-asan && ctest --output-on-failure --timeout 900)
fi
