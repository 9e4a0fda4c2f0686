#!/usr/bin/env bash
# bench/init.sh - topowire-init against the loopback kube-apiserver stand-in,
# pairwise in one run with a bare curl process doing the same GET (the floor
# for libcurl+OpenSSL), a curl | jq script and kubectl; plus the IMDS path and
# the IMDSv2 hop-limit hang path. Wall time by hyperfine (median of many runs),
# peak RSS by GNU time (median of 20 runs).
set -euo pipefail
source "$(dirname "$0")/../tests/lib.sh"
source "$TW_ROOT/tests/standin.sh"
INIT=$TW_ROOT/bin/topowire-init
NODE=ip-10-0-41-17.ec2.internal
RUNS=${TW_BENCH_RUNS:-200}

start_kube
start_imds aws
start_imds aws --fault put-hang
HANG_URL=$IMDS_URL
start_imds aws
mkdir -p "$TW_TMP/out" "$TW_TMP/nopod"
TOKEN=$(cat "$KUBE_TOKEN_FILE")
ACCEPT='application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json'
URL="$KUBE_URL/api/v1/nodes/$NODE"

export NODE_NAME=$NODE KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KUBE_PORT
unset KUBECONFIG
cat >"$TW_TMP/curl.sh" <<SH
#!/bin/sh
exec curl -sf --cacert "$KUBE_CA" -H "Authorization: Bearer \$(cat $KUBE_TOKEN_FILE)" -H "Accept: $ACCEPT" -o "$TW_TMP/out/node.json" "$URL"
SH
cat >"$TW_TMP/curljq.sh" <<SH
#!/bin/sh
curl -sf --cacert "$KUBE_CA" -H "Authorization: Bearer \$(cat $KUBE_TOKEN_FILE)" -H "Accept: $ACCEPT" "$URL" |
  jq -r '"client.rack=" + .metadata.labels["topology.kubernetes.io/zone"]' >"$TW_TMP/out/rack.properties.tmp" &&
  mv "$TW_TMP/out/rack.properties.tmp" "$TW_TMP/out/rack.properties"
SH
chmod +x "$TW_TMP/curl.sh" "$TW_TMP/curljq.sh"
CURL_CMD="curl -sf --cacert $KUBE_CA -H 'Authorization: Bearer $TOKEN' -H 'Accept: $ACCEPT' -o $TW_TMP/out/node.json $URL"
INIT_KUBE="$INIT --sources kubernetes --token-file $KUBE_TOKEN_FILE --ca-file $KUBE_CA --podinfo-dir $TW_TMP/nopod --out-dir $TW_TMP/out --log-level warn"
INIT_IMDS="$INIT --sources imds --cloud aws --imds-endpoint $IMDS_URL --podinfo-dir $TW_TMP/nopod --out-dir $TW_TMP/out --log-level warn"
INIT_HANG="$INIT --sources imds --cloud aws --imds-endpoint $HANG_URL --podinfo-dir $TW_TMP/nopod --out-dir $TW_TMP/out --log-level warn"
KUBECTL="kubectl --kubeconfig $KUBECONFIG_FILE get node $NODE -o jsonpath={.metadata.labels.topology\\.kubernetes\\.io/zone}"

INIT_PRINT="$INIT --sources kubernetes --token-file $KUBE_TOKEN_FILE --ca-file $KUBE_CA --podinfo-dir $TW_TMP/nopod --print --log-level warn"
cmds=("$INIT_KUBE" "$CURL_CMD" "$INIT_PRINT" "$TW_TMP/curljq.sh")
names=("topowire-init (kubernetes source, 4 files written with fsync)" "curl, same GET (floor)" "topowire-init --print (the lookup alone)" "curl | jq script")
if command -v kubectl >/dev/null; then cmds+=("$KUBECTL"); names+=("kubectl get node -o jsonpath"); fi

hyperfine -N --style none --warmup 10 --runs "$RUNS" --export-json "$TW_TMP/h.json" "${cmds[@]}" >/dev/null 2>&1 ||
    hyperfine --style none --warmup 10 --runs "$RUNS" --export-json "$TW_TMP/h.json" "${cmds[@]}" >/dev/null
hyperfine -N --style none --warmup 5 --runs 50 --export-json "$TW_TMP/i.json" "$INIT_IMDS" "$INIT_HANG" >/dev/null 2>&1

rss() { # median peak RSS (KiB) of 20 runs of a shell command
    local i
    for i in $(seq 20); do
        /usr/bin/time -f %M sh -c "$1 >/dev/null 2>&1" 2>&1 >/dev/null | tail -1
    done | sort -n | sed -n 10p
}
ms() { jq -r ".results[$2].median * 1000 | . * 100 | round / 100" "$1"; }
p95() { jq -r ".results[$2].times | sort | .[(length * 0.95 | floor)] * 1000 | . * 100 | round / 100" "$1"; }

floor=$(ms "$TW_TMP/h.json" 1)
echo "### topowire-init: one node lookup against the loopback API server ($RUNS runs each, $(nproc) cores)"
echo
echo "| command | median wall (ms) | p95 (ms) | × curl | peak RSS (KiB) |"
echo "|---|---:|---:|---:|---:|"
for i in "${!cmds[@]}"; do
    m=$(ms "$TW_TMP/h.json" "$i")
    ratio=$(awk -v a="$m" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
    case "${cmds[$i]}" in
    "$TW_TMP"/*) r=$(rss "${cmds[$i]}") ;;
    *) r=$(rss "${cmds[$i]}") ;;
    esac
    echo "| ${names[$i]} | $m | $(p95 "$TW_TMP/h.json" "$i") | $ratio | $r |"
done
echo
echo "### topowire-init: instance-metadata paths (50 runs each)"
echo
echo "| path | median wall (ms) | p95 (ms) | peak RSS (KiB) |"
echo "|---|---:|---:|---:|"
echo "| AWS IMDSv2 (token PUT + 3 GETs) | $(ms "$TW_TMP/i.json" 0) | $(p95 "$TW_TMP/i.json" 0) | $(rss "$INIT_IMDS") |"
echo "| AWS hop-limit 1 (PUT hangs → IMDSv1) | $(ms "$TW_TMP/i.json" 1) | $(p95 "$TW_TMP/i.json" 1) | $(rss "$INIT_HANG") |"
echo
size=$(stat -c %s "$INIT")
stripped=$(strip -o "$TW_TMP/init.stripped" "$INIT" && stat -c %s "$TW_TMP/init.stripped")
echo "Binary: \`bin/topowire-init\` $size bytes as built (with debug info), $stripped bytes stripped."
