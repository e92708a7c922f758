#!/usr/bin/env bash
# A three-node trustreg cluster on loopback, for trying things out. It runs
# from any directory.
#
#   bash configs/local-cluster.sh [start] [DIR]   # build, start the three nodes, wait until ready
#   bash configs/local-cluster.sh restart N [DIR] # stop node N (1..3) and start it again
#   bash configs/local-cluster.sh stop [DIR]      # stop every node
#   bash configs/local-cluster.sh status [DIR]    # which nodes run
#
# DIR defaults to trustd-cluster/ at the top of the repository (git ignores
# it). DIR/pids holds the process id of node i on its line i while the
# cluster runs: stop removes it, restart replaces the node's line. Each node
# appends to DIR/node<i>.log. The genesis has one governance member; its key
# and a root-accreditor key are in DIR/keys. Starting again restarts the
# same cluster with its data.
#
# Ports (override the base with BASE_PORT, default 4090): node i uses libp2p
# TCP+QUIC BASE+i, the gateway BASE+4000+i, the admin API BASE+4100+i.
# TRUSTREG_BIN=DIR uses the trustd and trustctl built there instead of
# building them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${BASE_PORT:-4090}
STOP_WAIT=200 # tenths of a second a node has to stop after SIGTERM
READY_WAIT=${READY_WAIT:-150} # tenths of a second a node has to become ready

cmd=start
case "${1:-}" in
  start|stop|status) cmd=$1; shift ;;
  restart)
    cmd=restart
    NODE=${2:-}
    case "$NODE" in 1|2|3) ;; *) echo "usage: local-cluster.sh restart 1|2|3 [DIR]" >&2; exit 2 ;; esac
    shift 2 ;;
  -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
if [ $# -gt 1 ]; then
  echo "usage: local-cluster.sh [start|stop|status|restart N] [DIR]" >&2
  exit 2
fi
DIR=${1:-$ROOT/trustd-cluster}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
BIN=${TRUSTREG_BIN:-$DIR/bin}
PIDS=$DIR/pids

# pid_of N prints node N's pid from the pids file, or nothing.
pid_of() { [ -f "$PIDS" ] && sed -n "${1}p" "$PIDS" || true; }

# running PID succeeds when PID is a running trustd (not one that ended,
# not another program that got its pid, not a zombie).
running() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(ps -p "$1" -o stat=,comm= 2>/dev/null) || return 1
  case "$st" in Z*) return 1 ;; *trustd) return 0 ;; esac
  return 1
}

# set_pid N PID writes PID on line N of the pids file.
set_pid() {
  local lines=() i
  for i in 1 2 3; do lines[$i]=$(pid_of "$i"); done
  lines[$1]=$2
  printf '%s\n' "${lines[1]:-}" "${lines[2]:-}" "${lines[3]:-}" >"$PIDS.tmp"
  mv "$PIDS.tmp" "$PIDS"
}

# stop_node N stops node N and waits for it to exit.
stop_node() {
  local pid
  pid=$(pid_of "$1")
  running "$pid" || return 0
  kill "$pid"
  for _ in $(seq 1 "$STOP_WAIT"); do
    running "$pid" || return 0
    sleep 0.1
  done
  echo "node $1 (pid $pid) did not stop within $((STOP_WAIT / 10))s; see $DIR/node$1.log" >&2
  return 1
}

# start_node N starts node N, appending to its log, and records its pid.
start_node() {
  echo "--- $(date -u +%FT%TZ) local-cluster.sh starts node $1" >>"$DIR/node$1.log"
  "$BIN/trustd" --config "$DIR/node$1.yaml" >>"$DIR/node$1.log" 2>&1 &
  set_pid "$1" $!
}

# wait_ready N waits until node N's gateway is ready.
wait_ready() {
  local url=http://127.0.0.1:$((BASE + 4000 + $1))
  for _ in $(seq 1 "$READY_WAIT"); do
    curl -fs "$url/readyz" >/dev/null 2>&1 && return 0
    running "$(pid_of "$1")" || break
    sleep 0.1
  done
  echo "node $1 did not become ready; see $DIR/node$1.log, which ends:" >&2
  tail -n 15 "$DIR/node$1.log" >&2 || true
  return 1
}

case $cmd in
status)
  for i in 1 2 3; do
    pid=$(pid_of "$i")
    if running "$pid"; then echo "node $i: running, pid $pid"; else echo "node $i: stopped"; fi
  done
  exit 0 ;;
stop)
  ok=0
  for i in 1 2 3; do stop_node "$i" || ok=1; done
  [ "$ok" = 0 ] && rm -f "$PIDS"
  exit "$ok" ;;
restart)
  [ -f "$DIR/node$NODE.yaml" ] || { echo "no cluster in $DIR: start it first" >&2; exit 1; }
  stop_node "$NODE"
  start_node "$NODE"
  wait_ready "$NODE"
  echo "node $NODE restarted, pid $(pid_of "$NODE")"
  exit 0 ;;
esac

# start
for i in 1 2 3; do
  if running "$(pid_of "$i")"; then
    echo "node $i runs already (pid $(pid_of "$i")): stop the cluster first with: bash $ROOT/configs/local-cluster.sh stop $DIR" >&2
    exit 1
  fi
done
rm -f "$PIDS" # what it lists has ended
mkdir -p "$DIR/keys"
if [ -z "${TRUSTREG_BIN:-}" ]; then
  (cd "$ROOT" && go build -o "$BIN/" ./cmd/trustd ./cmd/trustctl)
fi

if [ ! -f "$DIR/genesis.json" ]; then
  GOV=$("$BIN/trustctl" keygen --out "$DIR/keys/governance.jwk" 2>/dev/null)
  "$BIN/trustctl" keygen --out "$DIR/keys/root-accreditor.jwk" >/dev/null 2>&1
  # The three nodes cosign the registry's checkpoints (answers with
  # proofs, audits); two of them make a quorum, so a restarted node does
  # not stop the checkpoints.
  COSIGNERS=""
  for i in 1 2 3; do
    vkey=$("$BIN/trustd" identity --cosigner --name "node$i" --data-dir "$DIR/node$i")
    COSIGNERS="$COSIGNERS${COSIGNERS:+, }\"$vkey\""
  done
  cat > "$DIR/genesis.json" <<JSON
{"consortium": "local three-node consortium", "threshold": 1, "members": [{"id": "$GOV", "name": "local governance"}],
 "cosigners": [$COSIGNERS], "cosignerQuorum": 2}
JSON
fi

declare -a ADDRS
for i in 1 2 3; do
  id=$("$BIN/trustd" identity --data-dir "$DIR/node$i")
  ADDRS[$i]="/ip4/127.0.0.1/tcp/$((BASE + i))/p2p/$id"
done
for i in 1 2 3; do
  peers=""
  for j in 1 2 3; do
    [ "$i" = "$j" ] || peers="$peers    - ${ADDRS[$j]}"$'\n'
  done
  cat > "$DIR/node$i.yaml" <<YAML
data_dir: $DIR/node$i
genesis: $DIR/genesis.json
http:
  addr: 127.0.0.1:$((BASE + 4000 + i))
admin:
  addr: 127.0.0.1:$((BASE + 4100 + i))
p2p:
  listen:
    - /ip4/127.0.0.1/tcp/$((BASE + i))
    - /ip4/127.0.0.1/udp/$((BASE + i))/quic-v1
  peers:
$peers
YAML
  start_node "$i"
done

for i in 1 2 3; do wait_ready "$i"; done

GW1=127.0.0.1:$((BASE + 4001)) GW2=127.0.0.1:$((BASE + 4002)) GW3=127.0.0.1:$((BASE + 4003))
AD1=127.0.0.1:$((BASE + 4101)) AD2=127.0.0.1:$((BASE + 4102)) AD3=127.0.0.1:$((BASE + 4103))
cat <<EOF2
three trustd nodes are running (pids in $PIDS, logs appended to $DIR/node*.log)
  gateways (--server)  $GW1 $GW2 $GW3
  admin APIs (--admin) $AD1 $AD2 $AD3
  genesis              $DIR/genesis.json
  keys                 $DIR/keys/governance.jwk  $DIR/keys/root-accreditor.jwk

try:
  export PATH=$BIN:\$PATH TRUSTCTL_SERVER=$GW1,$GW2,$GW3 TRUSTCTL_ADMIN=$AD1,$AD2,$AD3 TRUSTCTL_GENESIS=$DIR/genesis.json
  trustctl cluster status
  trustctl framework create --id https://example.org/fw --name Demo --root \$(trustctl did $DIR/keys/root-accreditor.jwk) --key $DIR/keys/governance.jwk
restart node 2, stop:
  ${BASE_PORT:+BASE_PORT=$BASE_PORT }bash $ROOT/configs/local-cluster.sh restart 2 $DIR
  ${BASE_PORT:+BASE_PORT=$BASE_PORT }bash $ROOT/configs/local-cluster.sh stop $DIR
EOF2
