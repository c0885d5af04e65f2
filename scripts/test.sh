#!/usr/bin/env bash
# Installs what is missing (Debian packages, and Apache Kafka's jars from Maven Central), checks
# the alert rules with promtool, model-checks the handover protocol with spin (and checks that
# spin rejects the broken variant), builds, and runs every test (ctest): unit, integration over
# the embedded Kafka, and end-to-end with real xdcd processes killed with SIGKILL. Runs the
# in-process integration suites again on a real Kafka broker (KRaft, scripts/kafka.sh), then the
# chaos suite's short run (docs/chaos.md). Before the build, clang checks the locking
# annotations (scripts/check-thread-safety.sh, a few minutes); at the end the multi-threaded
# in-process suites run again under ThreadSanitizer (scripts/test-tsan.sh, about 10 minutes with
# its build). About 35 minutes on a fresh 2-core machine. With
# --sanitize it then builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the ctest
# suite again (about 20 minutes more). ctest runs two tests at a time (the machine has 2 cores);
# every test keeps its own ports, directories and topics.
#
# Usage: scripts/test.sh [--sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
case "${1:-}" in
  "") ;;
  --sanitize) sanitize=1 ;;
  *)
    echo "usage: scripts/test.sh [--sanitize]   (--sanitize adds an ASan+UBSan build and ctest pass)" >&2
    exit 2
    ;;
esac
start=$SECONDS

scripts/install-deps.sh
scripts/kafka.sh install

echo "== alert rules, their unit tests and the dashboard (promtool; runbooks/README.md)"
scripts/check-alerts.sh

echo "== model check of the handover protocol (spin; models/README.md)"
scripts/check-models.sh

echo "== locking annotations checked by clang (-Wthread-safety; scripts/check-thread-safety.sh)"
scripts/check-thread-safety.sh

echo "== build (RelWithDebInfo) and test"
scripts/build.sh
(cd build && ctest -j2 --output-on-failure --timeout 600)

echo "== integration suites on a real Kafka broker (scripts/kafka.sh: Apache Kafka, KRaft)"
kafka_dir="$PWD/build/kafka-tests"
rm -rf "$kafka_dir"
trap 'scripts/kafka.sh stop --dir "$kafka_dir" >/dev/null || true' EXIT
bootstrap="$(scripts/kafka.sh start --dir "$kafka_dir" --port 19092 --controller-port 19093 |
  sed -n 's/^bootstrap: //p')"
# Each test uses topics of its own on the shared broker (tests/two_clusters.h TestTopicPrefix).
for suite in integration_test handover_test resend_dlq_test three_clusters_test retention_test; do
  echo "-- $suite on $bootstrap"
  XDC_TEST_KAFKA_BOOTSTRAP="$bootstrap" "build/$suite" --gtest_brief=1
done
scripts/kafka.sh stop --dir "$kafka_dir"
trap - EXIT

echo "== chaos suite, short run (docs/chaos.md): every scenario on the real broker,"
echo "   then the mock-only broker faults (broker down, request errors, latency)"
XDC_CHAOS_REPORT_DIR=build/chaos-reports/real scripts/chaos.sh --broker real
XDC_CHAOS_REPORT_DIR=build/chaos-reports/mock scripts/chaos.sh --broker mock --only broker-faults

echo "== data races: the multi-threaded in-process suites under ThreadSanitizer (scripts/test-tsan.sh)"
scripts/test-tsan.sh

if [ "$sanitize" -eq 1 ]; then
  echo "== build with ASan + UBSan and test"
  scripts/build.sh --sanitize
  # Child xdcd processes inherit these, so their leaks and UB fail the tests too.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # The normal pass runs the full 100,000 randomized convergence cases; under the sanitizers
  # (several times slower) a smaller sample checks the same code for memory errors and UB.
  export XDC_PROPERTY_CASES="${XDC_PROPERTY_CASES_SANITIZED:-20000}"
  (cd build-asan && ctest -j2 --output-on-failure --timeout 900)
fi
echo "== all passed in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
