#!/usr/bin/env bash
# The chaos suite, as CI runs it: `xdc-chaos suite` (every scenario that applies to the broker,
# short runs; docs/chaos.md) with its JSON reports kept in a folder. Builds nothing: run
# scripts/build.sh first. The broker is the real one (Apache Kafka, KRaft; scripts/kafka.sh
# install puts it in place) unless the arguments name one.
#
#   scripts/chaos.sh                       the CI suite on the real broker (about 10 minutes)
#   scripts/chaos.sh --broker mock         the same on xdc-kafka-mock
#   scripts/chaos.sh --long                more seeds, longer windows, twice the load
#   scripts/chaos.sh --only split-brain    any other `xdc-chaos suite` flag passes through
#
# Reports: $XDC_CHAOS_REPORT_DIR, else build/chaos-reports/<UTC time>/ (one JSON per run and
# suite.json). Exit status: xdc-chaos's (0 all passed, 1 an invariant was violated, 3 the
# environment failed).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${XDC_BUILD_DIR:-build}"
bin="$build_dir/xdc-chaos"
if [ ! -x "$bin" ]; then
  echo "chaos.sh: $bin is missing: run scripts/build.sh first" >&2
  exit 3
fi

broker=(--broker real)
for arg in "$@"; do
  case "$arg" in
    --broker | --broker=*) broker=() ;;
  esac
done

report_dir="${XDC_CHAOS_REPORT_DIR:-$build_dir/chaos-reports/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$report_dir"
echo "chaos.sh: reports in $report_dir"
exec "$bin" suite "${broker[@]}" --report-dir "$report_dir" "$@"
