#!/usr/bin/env bash
# Model-checks the graceful handover protocol (models/handover.pml) with spin.
#
# Every run: spin -a, gcc, ./pan (exhaustive safety search: assertions and invalid end states)
# in a temporary directory. A run marked "ok" must report "errors: 0"; a run marked "violation"
# (the broken model, the unsafe readings of the protocol, the reachability probes) must report at
# least one error, and its counterexample is printed. Any run whose search depth was too small
# fails. Exits non-zero if any run fails. models/README.md says what the runs prove.
#
# Usage: scripts/check-models.sh [--extended]   (--extended adds seven larger runs, about 5 minutes)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="$ROOT/models"
EXTENDED=0
case "${1:-}" in
  "") ;;
  --extended) EXTENDED=1 ;;
  *) echo "usage: $0 [--extended]" >&2; exit 2 ;;
esac

for tool in spin gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "check-models: '$tool' not found; run scripts/install-deps.sh" >&2
    exit 1
  fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/check-models.XXXXXX")"
FAILED=0
cleanup() {
  if [ "$FAILED" -eq 0 ]; then rm -rf "$WORK"; else echo "check-models: logs kept in $WORK" >&2; fi
}
trap cleanup EXIT

# name | expect (ok or violation) | model file | spin -D flags [| gcc optimisation, default -O2:
# -O0 for the violation runs that stop within a few thousand states, where the compile dominates]
RUNS=(
  # The protocol: exhaustive within the bounds (NC clusters, NS shards, MAXW writes, MAXH
  # handover attempts, MAXF forced failovers; message loss, duplication, reordering unbounded).
  "nc2-graceful        |ok       |handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=3"
  "nc3-graceful        |ok       |handover.pml        |-DNC=3 -DMAXW=2 -DMAXH=2"
  "nc2-forced          |ok       |handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=2 -DMAXF=1"
  "nc3-forced-1shard   |ok       |handover.pml        |-DNC=3 -DNS=1 -DMAXW=0 -DMAXH=2 -DMAXF=1"
  # The deliberate bug: the source resumes on its own timeout without the target's decision.
  "broken              |violation|handover_broken.pml |-DNC=2 -DMAXW=3 -DMAXH=3"
  # Unsafe readings of the protocol text (models/README.md, "Findings").
  "latest-decision-only|violation|handover.pml        |-DNC=3 -DMAXW=0 -DMAXH=3 -DLATEST_DECISION_ONLY"
  "resume-not-active   |violation|handover.pml        |-DNC=3 -DNS=1 -DMAXW=0 -DMAXH=2 -DMAXF=1 -DRESUME_WITHOUT_ACTIVE_CHECK"
  "reply-to-decided-src|violation|handover.pml        |-DNC=3 -DNS=1 -DMAXW=0 -DMAXH=2 -DMAXF=1 -DREPLY_TO_DECIDED_SOURCE"
  # Reachability probes: the checked runs do reach the situations the properties are about.
  "probe-activation    |violation|handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=3 -DPROBE=1"
  "probe-cancel-resume |violation|handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=3 -DPROBE=2"
  "probe-write-on-top  |violation|handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=3 -DPROBE=3"
  "probe-vector-waits  |violation|handover.pml        |-DNC=3 -DMAXW=2 -DMAXH=2 -DPROBE=4"
  "probe-superseded    |violation|handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=2 -DMAXF=1 -DPROBE=5"
  "probe-forced-fork   |violation|handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=2 -DMAXF=1 -DPROBE=6"
  "probe-run-ends      |violation|handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=3 -DPROBE=7"
  # Membership (MAXM changes; LATE: cluster 1 joins the namespace late) and failback (FAILBACK:
  # P2 at every graceful activation after a forced failover). Both apply tasks as branches.
  "members-late        |ok       |handover.pml        |-DNC=2 -DLATE -DMAXW=2 -DMAXH=2 -DMAXM=3"
  "members-readd       |ok       |handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=2 -DMAXM=2"
  "members-forced      |ok       |handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=1 -DMAXM=2 -DMAXF=1"
  "nc2-failback-1shard |ok       |handover.pml        |-DNC=2 -DNS=1 -DMAXW=3 -DMAXH=2 -DMAXF=1 -DFAILBACK"
  "nc2-failback-4w     |ok       |handover.pml        |-DNC=2 -DMAXW=4 -DMAXH=1 -DMAXF=1 -DFAILBACK"
  # The rules that fixed item 19, each removed: spin must find the lost write.
  "ignores-awaiting    |violation|handover.pml        |-DNC=2 -DLATE -DMAXW=2 -DMAXH=2 -DMAXM=3 -DHANDOVER_IGNORES_AWAITING_HISTORY|-O0"
  "settings-cv-only    |violation|handover.pml        |-DNC=2 -DMAXW=1 -DMAXH=1 -DMAXM=2 -DMAXF=1 -DSETTINGS_BY_CONFIG_VERSION_ONLY|-O0"
  "failback-own-branch |violation|handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=1 -DMAXF=1 -DFAILBACK -DFAILBACK_KEEPS_OWN_BRANCH|-O0"
  "failback-superseded |violation|handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=1 -DMAXF=1 -DFAILBACK -DACTIVATE_SUPERSEDED|-O0"
  # What the code does today and the model shows unsafe (models/README.md, "Findings" 5-7).
  "verify-stale-record |violation|handover.pml        |-DNC=2 -DLATE -DMAXW=2 -DMAXH=2 -DMAXM=3 -DVERIFY_WITHOUT_TARGET_SETTINGS|-O0"
  "verify-in-flight    |violation|handover.pml        |-DNC=2 -DLATE -DMAXW=2 -DMAXH=2 -DMAXM=3 -DVERIFY_ACCEPTS_IN_FLIGHT|-O0"
  "verify-unbound      |violation|handover.pml        |-DNC=2 -DLATE -DMAXW=2 -DMAXH=2 -DMAXM=3 -DVERIFY_NOT_BOUND_TO_SETTINGS"
  # Reachability: a member that skipped tasks is activated; a failback completes after a fork.
  "probe-late-active   |violation|handover.pml        |-DNC=2 -DLATE -DMAXW=2 -DMAXH=2 -DMAXM=3 -DPROBE=9|-O0"
  "probe-readd-active  |violation|handover.pml        |-DNC=2 -DMAXW=3 -DMAXH=2 -DMAXM=2 -DPROBE=9|-O0"
  "probe-failback      |violation|handover.pml        |-DNC=2 -DNS=1 -DMAXW=3 -DMAXH=2 -DMAXF=1 -DFAILBACK -DPROBE=10|-O0"
)
if [ "$EXTENDED" -eq 1 ]; then
  RUNS+=(
    "nc2-graceful-4w     |ok       |handover.pml        |-DNC=2 -DMAXW=4 -DMAXH=3"
    "nc3-forced-1w-1shard|ok       |handover.pml        |-DNC=3 -DNS=1 -DMAXW=1 -DMAXH=2 -DMAXF=1"
    "nc3-graceful-3att   |ok       |handover.pml        |-DNC=3 -DMAXW=0 -DMAXH=3"
    "members-late-3w     |ok       |handover.pml        |-DNC=2 -DLATE -DMAXW=3 -DMAXH=2 -DMAXM=3"
    "nc3-members-1shard  |ok       |handover.pml        |-DNC=3 -DNS=1 -DLATE -DMAXW=1 -DMAXH=2 -DMAXM=1"
    "nc2-failback        |ok       |handover.pml        |-DNC=2 -DMAXW=2 -DMAXH=2 -DMAXF=1 -DFAILBACK"
    "nc3-failback-1shard |ok       |handover.pml        |-DNC=3 -DNS=1 -DMAXW=1 -DMAXH=2 -DMAXF=1 -DFAILBACK"
  )
fi

trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; echo "${s%"${s##*[![:space:]]}"}"; }

run() {
  local name expect model defs dir opt
  name="$(trim "$1")"; expect="$(trim "$2")"; model="$(trim "$3")"; defs="$(trim "$4")"
  opt="$(trim "${5:-}")"; opt="${opt:--O2}"
  dir="$WORK/$name"
  mkdir -p "$dir"
  local start=$SECONDS
  # shellcheck disable=SC2086  # $defs is a list of -D flags
  if ! (cd "$dir" && spin $defs -a "$MODELS/$model" >spin.log 2>&1); then
    echo "FAIL  $name: spin -a failed:"; sed 's/^/      /' "$dir/spin.log"; FAILED=1; return
  fi
  if ! (cd "$dir" && gcc "$opt" -DSAFETY -o pan pan.c >gcc.log 2>&1); then
    echo "FAIL  $name: gcc failed:"; tail -20 "$dir/gcc.log" | sed 's/^/      /'; FAILED=1; return
  fi
  (cd "$dir" && ./pan -m10000 >pan.log 2>&1) || true
  local log="$dir/pan.log" states depth errors ptime verdict
  states="$(awk '/states, stored/ {print $1; exit}' "$log")"
  depth="$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$log" | head -1)"
  errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$log" | head -1)"
  ptime="$(sed -n 's/^pan: elapsed time \([0-9.e+]*\) seconds.*/\1/p' "$log" | head -1)"
  verdict=PASS
  if grep -q "max search depth too small" "$log"; then
    verdict=FAIL; echo "      $name: max search depth too small"
  elif [ -z "$errors" ]; then
    verdict=FAIL; echo "      $name: pan did not finish:"; tail -5 "$log" | sed 's/^/      /'
  elif [ "$expect" = ok ] && [ "$errors" != 0 ]; then
    verdict=FAIL
  elif [ "$expect" = violation ] && [ "$errors" = 0 ]; then
    verdict=FAIL; echo "      $name: expected a violation, spin reports none"
  fi
  printf '%s  %-20s expect %-9s errors %-2s states %10s  depth %3s  pan %6ss  wall %3ss\n' \
    "$verdict" "$name" "$expect" "${errors:-?}" "${states:-?}" "${depth:-?}" "${ptime:-?}" \
    "$((SECONDS - start))"
  if [ "${errors:-0}" != 0 ]; then
    local trail where
    if [[ "$name" != probe-* ]]; then
      # search again for the shortest counterexample (-i), to print a readable one
      (cd "$dir" && ./pan -m10000 -i >pan-shortest.log 2>&1) || true
    fi
    trail="$(cd "$dir" && ls -- *.trail 2>/dev/null | head -1 || true)"
    if [ -n "$trail" ]; then
      # shellcheck disable=SC2086
      (cd "$dir" && spin -k "$trail" -t $defs "$MODELS/$model" >replay.log 2>&1) || true
      # the violated assertion's source line (its comment names the property)
      where="$(sed -n 's/^spin: \(.*\):\([0-9]*\), Error: assertion violated.*/\1:\2/p' \
        "$dir/replay.log" | head -1)"
      if [ -n "$where" ]; then
        echo "      violated: $(basename "${where%:*}"):${where##*:}: $(sed -n "${where##*:}p" \
          "${where%:*}" | sed 's/^[[:space:]]*//')"
      fi
      if [[ "$name" != probe-* ]]; then
        sed -n 's/^ *STEP /      step: /p' "$dir/replay.log"
      fi
    fi
  fi
  [ "$verdict" = PASS ] || FAILED=1
}

echo "check-models: spin $(spin -V | sed -n 's/^Spin Version \([^ ]*\).*/\1/p'), models in $MODELS"
for entry in "${RUNS[@]}"; do
  IFS='|' read -r f1 f2 f3 f4 f5 <<<"$entry"
  run "$f1" "$f2" "$f3" "$f4" "${f5:-}"
done

if [ "$FAILED" -ne 0 ]; then
  echo "check-models: FAILED"
  exit 1
fi
echo "check-models: all runs as expected (${SECONDS}s)"
