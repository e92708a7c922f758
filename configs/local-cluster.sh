#!/usr/bin/env bash
# Start a three-node trustreg cluster on loopback, for trying things out.
#
#   bash configs/local-cluster.sh [DIR]     # default DIR: ./trustd-cluster
#   kill $(cat DIR/pids)                    # stop it
#
# Ports (override the base with BASE_PORT, default 4090): node i (1..3) uses
# libp2p TCP+QUIC BASE+i, the gateway BASE+4000+i, the admin API BASE+4100+i.
# The genesis has one governance member; its key and a root-accreditor key
# are in DIR/keys. Running it again restarts the same cluster.
set -euo pipefail
DIR=${1:-trustd-cluster}
BASE=${BASE_PORT:-4090}
mkdir -p "$DIR/keys"
go build -o "$DIR/bin/" ./cmd/trustd ./cmd/trustctl
BIN=$DIR/bin
if [ -f "$DIR/pids" ]; then
  echo "a cluster may be running: stop it with: kill \$(cat $DIR/pids)" >&2
  exit 1
fi

if [ ! -f "$DIR/genesis.json" ]; then
  GOV=$("$BIN/trustctl" keygen --out "$DIR/keys/governance.jwk" 2>/dev/null)
  "$BIN/trustctl" keygen --out "$DIR/keys/root-accreditor.jwk" >/dev/null 2>&1
  cat > "$DIR/genesis.json" <<JSON
{"consortium": "local three-node consortium", "threshold": 1, "members": [{"id": "$GOV", "name": "local governance"}]}
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
  "$BIN/trustd" --config "$DIR/node$i.yaml" >"$DIR/node$i.log" 2>&1 &
  echo $! >>"$DIR/pids"
done

for i in 1 2 3; do
  url=http://127.0.0.1:$((BASE + 4000 + i))
  for _ in $(seq 1 100); do
    curl -fs "$url/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "$url/readyz" >/dev/null || { echo "node $i did not become ready; see $DIR/node$i.log" >&2; exit 1; }
done

cat <<EOF2
three trustd nodes are running (pids in $DIR/pids, logs in $DIR/node*.log)
  gateways   http://127.0.0.1:$((BASE + 4001))  http://127.0.0.1:$((BASE + 4002))  http://127.0.0.1:$((BASE + 4003))
  admin      http://127.0.0.1:$((BASE + 4101))  (and +1, +2)
  keys       $DIR/keys/governance.jwk  $DIR/keys/root-accreditor.jwk

try:
  export PATH=$(cd "$BIN" && pwd):\$PATH TRUSTCTL_SERVER=http://127.0.0.1:$((BASE + 4002))
  trustctl cluster --admin http://127.0.0.1:$((BASE + 4101)) status
  trustctl framework create --id https://example.org/fw --name Demo --root \$(trustctl did $DIR/keys/root-accreditor.jwk) --key $DIR/keys/governance.jwk
stop:
  kill \$(cat $DIR/pids) && rm $DIR/pids
EOF2
