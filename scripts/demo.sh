#!/usr/bin/env bash
# The xdc demo: two clusters (east, west) as separate xdcd processes on east's embedded Kafka.
# Registers namespace "demo" active on east, writes workflows with signals on east, and shows
# that west converged (per-workflow digests) with its per-shard lag. Then hands the namespace
# over to west gracefully, writes there, loses west (SIGKILL) and fails over to east by force,
# brings west back and shows both converged again with the namespace's failover history.
# Exits 0 only if every step did what it says.
#
# Usage: scripts/demo.sh [--workflows N]      (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."

WORKFLOWS=1000
if [ "${1:-}" = "--workflows" ]; then WORKFLOWS="$2"; fi

scripts/install-deps.sh
scripts/build.sh xdcd xdcctl

BIN=build
DIR=.xdc-demo
rm -rf "$DIR"
mkdir -p "$DIR"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Waits (up to 30 s) for a line starting with $2 in log $1 and prints it.
wait_for_line() {
  local log=$1 prefix=$2
  for _ in $(seq 300); do
    if line=$(grep -m1 "^$prefix" "$log" 2>/dev/null); then echo "$line"; return 0; fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "demo: xdcd did not start; its log ($log):" >&2
  cat "$log" >&2
  return 1
}

write_config() {  # name, kafka bootstrap ("" = embedded)
  cat > "$DIR/$1.conf" <<CONF
cluster_name: "$1"
failover_version_increment: 100
shard_count: 8
clusters { name: "east" initial_failover_version: 1 }
clusters { name: "west" initial_failover_version: 2 }
data_dir: "$DIR/$1"
http_listen_address: "127.0.0.1:0"
CONF
  if [ -n "$2" ]; then echo "kafka { bootstrap_servers: \"$2\" }" >> "$DIR/$1.conf"; fi
}

step() { printf '\n== %s\n' "$*"; }

# Starts cluster $1 (with Kafka at $2, or embedded when empty), waits until it is ready and
# prints its HTTP address.
start_cluster() {
  write_config "$1" "$2"
  "$BIN/xdcd" --config "$DIR/$1.conf" > "$DIR/$1.log" 2>&1 &
  pids+=($!)
  wait_for_line "$DIR/$1.log" "xdcd: ready" >/dev/null
}
http_address() { grep -m1 "listening on" "$DIR/$1.log" | sed 's#.*http://##'; }

step "Starting cluster east with an embedded Kafka (librdkafka's mock cluster)"
start_cluster east ""
KAFKA=$(grep -m1 "kafka bootstrap" "$DIR/east.log" | awk '{print $NF}')
EAST=$(http_address east)
echo "east: API http://$EAST, Kafka $KAFKA"

step "Starting cluster west, joining east's Kafka"
start_cluster west "$KAFKA"
WEST=$(http_address west)
echo "west: API http://$WEST"

CTL="$BIN/xdcctl"
step "Registering namespace 'demo' on east, active on east, replicated to west"
"$CTL" --address "$EAST" namespace register demo --clusters east,west --active east

step "Writing $WORKFLOWS workflows on east (start + 3 activity events, 2 signals, complete)"
"$CTL" --address "$EAST" load --namespace demo --workflows "$WORKFLOWS" \
  --events-per-workflow 5 --signals 2 --concurrency 8

step "Comparing every workflow's history digest on east and west (waiting up to 60 s)"
converged=0
"$CTL" --address "$EAST" compare --namespace demo --peer "$WEST" --wait 60 || converged=$?

step "West refuses writes for the namespace and names the active cluster"
if "$CTL" --address "$WEST" append --namespace demo --workflow-id not-here \
     --expected-next-event-id 1 --event WORKFLOW_EXECUTION_STARTED 2> "$DIR/gate.err"; then
  echo "demo: west accepted a write for a namespace active on east" >&2
  exit 1
fi
cat "$DIR/gate.err"
grep -q "active on cluster 'east'" "$DIR/gate.err"

step "East: how many appends shared each synced write (group commit)"
"$CTL" --address "$EAST" status | grep "group commit"

step "West's per-shard apply progress and lag"
"$CTL" --address "$WEST" status

step "One replicated history, as west holds it"
"$CTL" --address "$WEST" history --namespace demo --workflow-id wf-000042

if [ "$converged" -ne 0 ]; then
  echo; echo "demo: FAILED, west did not converge (logs in $DIR/)" >&2
  exit 1
fi

step "Graceful handover of 'demo' from east to west: east stops writes, west activates once it holds everything"
"$CTL" --address "$EAST" namespace failover demo --to west --timeout 30s

step "Writing 100 more workflows, now on west"
"$CTL" --address "$WEST" load --namespace demo --workflows 100 --prefix after-handover \
  --events-per-workflow 5 --signals 2 --concurrency 4
"$CTL" --address "$WEST" compare --namespace demo --peer "$EAST" --wait 60

step "Region west is lost (SIGKILL); forced failover of 'demo' to east, which activates at once"
kill -KILL "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
"$CTL" --address "$EAST" namespace failover demo --to east --force
"$CTL" --address "$EAST" load --namespace demo --workflows 50 --prefix after-failover \
  --events-per-workflow 5 --signals 2 --concurrency 4

step "West comes back: it learns east is active and catches up"
"$BIN/xdcd" --config "$DIR/west.conf" >> "$DIR/west.log" 2>&1 &
pids[1]=$!
for _ in $(seq 300); do
  [ "$(grep -c "listening on" "$DIR/west.log")" -ge 2 ] && break
  sleep 0.1
done
WEST=$(grep "listening on" "$DIR/west.log" | tail -1 | sed 's#.*http://##')
"$CTL" --address "$EAST" compare --namespace demo --peer "$WEST" --wait 60

step "The namespace's failover history, with how long writes were refused and what was lost"
"$CTL" --address "$EAST" namespace history demo

echo; echo "demo: OK, west and east hold the same histories after a handover and a forced failover (logs in $DIR/)"
