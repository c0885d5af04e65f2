#!/usr/bin/env bash
# The xdc demo: two regions, east and west, each an xdcd process with its own embedded Kafka
# (librdkafka's mock cluster inside the xdcd, on a fixed loopback address). Each region produces
# only to its own Kafka and reads the other's topics from the other's Kafka. Registers namespace
# "demo" active on east, writes workflows with signals on east, and shows that west converged
# (per-workflow digests) with its per-shard lag. Then hands the namespace over to west
# gracefully, writes there (east now reads west's Kafka), cuts region west off (SIGSTOP freezes
# its xdcd and its Kafka) and fails over to east by force, brings west back and shows both
# converged again with the namespace's failover history. Exits 0 only if every step did what it
# says.
#
# Usage: scripts/demo.sh [--workflows N]      (default 1000)
# The regions' Kafkas listen on $XDC_DEMO_EAST_KAFKA and $XDC_DEMO_WEST_KAFKA (defaults
# 127.0.0.1:29092 and 127.0.0.1:29192); set them if those ports are taken.
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
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
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

EAST_KAFKA=${XDC_DEMO_EAST_KAFKA:-127.0.0.1:29092}
WEST_KAFKA=${XDC_DEMO_WEST_KAFKA:-127.0.0.1:29192}

# One list of clusters for both configs: each entry says where that region's Kafka is.
write_config() {  # name, the address of its own embedded Kafka
  cat > "$DIR/$1.conf" <<CONF
cluster_name: "$1"
failover_version_increment: 100
shard_count: 8
clusters { name: "east" initial_failover_version: 1 kafka { bootstrap_servers: "$EAST_KAFKA" } }
clusters { name: "west" initial_failover_version: 2 kafka { bootstrap_servers: "$WEST_KAFKA" } }
data_dir: "$DIR/$1"
http_listen_address: "127.0.0.1:0"
kafka { embedded_listen_address: "$2" }
CONF
}

step() { printf '\n== %s\n' "$*"; }

# Starts cluster $1 with its own embedded Kafka at $2, waits until it is ready.
start_cluster() {
  write_config "$1" "$2"
  "$BIN/xdcd" --config "$DIR/$1.conf" > "$DIR/$1.log" 2>&1 &
  pids+=($!)
  wait_for_line "$DIR/$1.log" "xdcd: ready" >/dev/null
}
http_address() { grep -m1 "listening on" "$DIR/$1.log" | sed 's#.*http://##'; }

CTL="$BIN/xdcctl"
step "Starting region east with its own embedded Kafka at $EAST_KAFKA"
start_cluster east "$EAST_KAFKA"
EAST=$(http_address east)
echo "east: API http://$EAST, Kafka $EAST_KAFKA"
echo "West is not up yet: east's applier for west waits for west's topics on west's Kafka:"
for _ in $(seq 100); do
  if "$CTL" --address "$EAST" status | grep "^WAITING"; then break; fi
  sleep 0.1
done

step "Starting region west with its own embedded Kafka at $WEST_KAFKA"
start_cluster west "$WEST_KAFKA"
WEST=$(http_address west)
echo "west: API http://$WEST, Kafka $WEST_KAFKA"
"$CTL" --address "$EAST" status | grep "is read from"
"$CTL" --address "$WEST" status | grep "is read from"

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

step "Writing 100 more workflows, now on west (east reads them from west's Kafka)"
"$CTL" --address "$WEST" load --namespace demo --workflows 100 --prefix after-handover \
  --events-per-workflow 5 --signals 2 --concurrency 4
"$CTL" --address "$WEST" compare --namespace demo --peer "$EAST" --wait 60

step "Region west is cut off (SIGSTOP freezes its xdcd and its Kafka); forced failover of 'demo' to east, which activates at once"
kill -STOP "${pids[1]}"
"$CTL" --address "$EAST" namespace failover demo --to east --force
"$CTL" --address "$EAST" load --namespace demo --workflows 50 --prefix after-failover \
  --events-per-workflow 5 --signals 2 --concurrency 4

step "West comes back (SIGCONT): it learns east is active and catches up from east's Kafka"
kill -CONT "${pids[1]}"
"$CTL" --address "$EAST" compare --namespace demo --peer "$WEST" --wait 60

step "The namespace's failover history, with how long writes were refused and what was lost"
"$CTL" --address "$EAST" namespace history demo

echo; echo "demo: OK, west and east, each on its own Kafka, hold the same histories after a handover and a forced failover (logs in $DIR/)"
