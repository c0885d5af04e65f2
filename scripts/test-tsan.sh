#!/usr/bin/env bash
# Builds the multi-threaded in-process suites with ThreadSanitizer (build-tsan/, -DXDC_TSAN=ON)
# and runs them; any data race TSan reports fails the run. These are the suites that run whole
# daemons (HTTP threads, group commit, publishers, appliers, sweeper, handover) in one process,
# plus the store's group commit; suites that drive xdcd processes are left out (TSan would be in
# the child, not the test) and so is MigrationKillTest (SIGKILLs xdcd processes).
#
# absl::Mutex is made visible to TSan by tsan/absl_sync_annotations.cc; third-party false
# positives are suppressed in tsan/suppressions.txt, one reason per entry.
#
# Usage: scripts/test-tsan.sh [SUITE...]   (default: every suite below)
set -euo pipefail
cd "$(dirname "$0")/.."

suites=(store_test reapply_sweeper_test integration_test handover_test resend_dlq_test
  migration_test region_kafka_test)
if [ $# -gt 0 ]; then suites=("$@"); fi
declare -A filters=(
  [migration_test]='-MigrationKillTest.*'
  # The embedded regions (relay and applier threads); the real-broker cases add only JVMs.
  [region_kafka_test]='-RegionKafkaRealBrokerTest.*'
)

start=$SECONDS
# handover_test runs xdcctl the way an operator would (build-tsan/xdcctl, TSan-built as well).
scripts/build.sh --tsan xdcctl "${suites[@]}"
echo "-- TSan build: $((SECONDS - start)) s"

# halt_on_error: the first race fails the suite, with its two stacks. second_deadlock_stack
# shows where each lock of a lock-order inversion was taken.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tsan/suppressions.txt"
# Randomized suites take a smaller sample under TSan (several times slower).
export XDC_PROPERTY_CASES="${XDC_PROPERTY_CASES_SANITIZED:-20000}"
for suite in "${suites[@]}"; do
  t=$SECONDS
  echo "-- $suite under ThreadSanitizer"
  "build-tsan/$suite" --gtest_brief=1 --gtest_filter="${filters[$suite]:-*}"
  echo "-- $suite: $((SECONDS - t)) s"
done
echo "-- TSan build and suites: $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
