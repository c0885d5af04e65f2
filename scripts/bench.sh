#!/usr/bin/env bash
# The benchmark (docs/benchmarks.md): installs what is missing (Debian packages, Apache Kafka's
# jars from Maven Central), builds xdc-bench, xdcd and xdc-kafka-mock (RelWithDebInfo), and runs
# `xdc-bench` on the real broker. Results: report.json and lag-handover.svg in the output folder.
#
#   scripts/bench.sh                          the full run (about 15 minutes on 2 cores)
#   scripts/bench.sh --output DIR             results into DIR (default build/bench-results/<UTC time>)
#   scripts/bench.sh --broker mock --quick    any other xdc-bench flag passes through
#
# Exit status: xdc-bench's (0 done, 1 a measurement could not run, 2 a bad flag).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/kafka.sh install

scripts/build.sh xdc-bench xdcd xdc-kafka-mock

args=("$@")
has_output=0
for arg in "$@"; do
  if [ "$arg" = "--output" ]; then has_output=1; fi
done
if [ "$has_output" -eq 0 ]; then
  args=(--output "build/bench-results/$(date -u +%Y%m%dT%H%M%SZ)" "$@")
fi
exec build/xdc-bench "${args[@]}"
