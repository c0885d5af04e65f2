#!/usr/bin/env bash
# Checks the locking annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...) with
# clang's thread-safety analysis. g++ ignores these annotations, so this is what makes them mean
# something: every translation unit of the project is parsed by clang++ with
# -Wthread-safety -Werror=thread-safety (and the project's own warning flags), -fsyntax-only, so
# no object code is generated. About 3 minutes on 2 cores.
#
# It configures build-clang/ with clang++ only to get compile_commands.json and the generated
# protobuf headers (the only targets it builds), then runs clang++ on every .cc listed there.
#
# Usage: scripts/check-thread-safety.sh [FILE.cc...]   (no FILE: every translation unit)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build-clang
jobs="${XDC_CHECK_JOBS:-2}"
command -v clang++ >/dev/null || {
  echo "check-thread-safety: clang++ not found (scripts/install-deps.sh installs it)" >&2
  exit 1
}
cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_COMPILER_LAUNCHER= \
  >/dev/null
ninja -C "$dir" -j"$jobs" protocol/xdc.pb.h replicator/kafka_statistics.pb.h >/dev/null

# One line per translation unit: directory, then the clang++ command with -fsyntax-only in place
# of -o/-c, and the thread-safety warnings as errors. Generated protobuf sources are skipped (not
# ours; they take no locks).
python3 - "$dir/compile_commands.json" "$@" >"$dir/thread-safety-commands" <<'EOF'
import json, shlex, sys
entries = json.load(open(sys.argv[1]))
only = {f.rstrip("/") for f in sys.argv[2:]}
for e in entries:
    src = e["file"]
    if src.endswith(".pb.cc"):
        continue
    if only and not any(src.endswith("/" + f) or src == f for f in only):
        continue
    args = shlex.split(e["command"])
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a == "-c":
            continue
        out.append(a)
    out += ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety",
            "-Wthread-safety-beta", "-Werror=thread-safety-beta"]
    print(shlex.quote(e["directory"]) + "\t" + " ".join(shlex.quote(a) for a in out))
EOF

count=$(wc -l <"$dir/thread-safety-commands")
echo "check-thread-safety: clang++ -fsyntax-only -Wthread-safety over $count translation units"
status=0
# xargs stops nothing on a failure: every finding is printed, then the script fails.
tr '\n' '\0' <"$dir/thread-safety-commands" |
  xargs -0 -P "$jobs" -I{} bash -c 'IFS=$'"'"'\t'"'"' read -r d c <<<"$1"; cd "$d" && eval "$c"' _ {} ||
  status=$?
if [ "$status" -ne 0 ]; then
  echo "check-thread-safety: FAILED (see the errors above)" >&2
  exit 1
fi
echo "check-thread-safety: no findings"
