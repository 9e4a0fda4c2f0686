#!/usr/bin/env bash
# Integration tests: the real topowire-init against the loopback kube-apiserver
# and instance-metadata stand-ins, for each source and each fault.
source "$(dirname "$0")/../lib.sh"
source "$TW_ROOT/tests/standin.sh"

INIT=$TW_BIN_DIR/topowire-init
NODE=ip-10-0-41-17.ec2.internal

start_kube
KUBE_FIRST_URL=$KUBE_URL
start_imds aws
AWS_URL=$IMDS_URL
start_imds gcp
GCP_URL=$IMDS_URL
start_imds azure
AZURE_URL=$IMDS_URL

EMPTY_PODINFO=$TW_TMP/no-podinfo
mkdir -p "$EMPTY_PODINFO"

# run_init NAME [ENV=...] -- [ARGS...]: runs topowire-init with a fresh out dir
# $TW_TMP/NAME/out, stderr in $TW_TMP/NAME/log, exit code in RC, wall ms in MS.
run_init() {
    local name=$1; shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    OUT=$TW_TMP/run-$name/out
    LOG=$TW_TMP/run-$name/log
    mkdir -p "$OUT"
    local t0 t1
    t0=$(date +%s%N)
    env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT -u KUBECONFIG \
        -u AWS_EC2_METADATA_DISABLED -u AWS_EC2_METADATA_SERVICE_ENDPOINT \
        HOME="$TW_TMP/home" NODE_NAME=$NODE "${envs[@]}" \
        timeout 30 "$INIT" --out-dir "$OUT" --podinfo-dir "$EMPTY_PODINFO" "$@" 2>"$LOG"
    RC=$?
    t1=$(date +%s%N)
    MS=$(( (t1 - t0) / 1000000 ))
}

# in-cluster environment for the kube stand-in
incluster() {
    echo KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KUBE_PORT
}
KFLAGS=(--token-file "$KUBE_TOKEN_FILE" --ca-file "$KUBE_CA")

envval() { # FILE KEY: value of KEY in a topology.env, by sourcing it in sh
    sh -c ". '$1' && eval \"printf %s \\\"\\\$$2\\\"\""
}

# --- downward -------------------------------------------------------------
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
run_init downward -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward,kubernetes,imds \
    --imds-endpoint "$AWS_URL" --cloud aws
expect_eq "downward: exit 0" 0 "$RC"
expect_eq "downward: zone from the binding annotations" us-east-1b "$(envval "$OUT/topology.env" TOPOLOGY_ZONE)"
expect_eq "downward: zone id too" use1-az4 "$(envval "$OUT/topology.env" TOPOLOGY_ZONE_ID)"
expect_eq "downward: region" us-east-1 "$(envval "$OUT/topology.env" TOPOLOGY_REGION)"
expect_eq "downward: source" downward "$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"
expect_eq "downward: node" "$NODE" "$(envval "$OUT/topology.env" TOPOLOGY_NODE)"
expect_eq "downward: rack.properties is exactly one line" "client.rack=us-east-1b" "$(cat "$OUT/rack.properties")"
expect_eq "downward: rack.properties line count" 1 "$(wc -l <"$OUT/rack.properties")"
expect_eq "downward: client.rack is the bare value without newline" "us-east-1b" "$(od -An -c "$OUT/client.rack" | tr -d ' \n' | sed 's/\\//g')"
expect_eq "downward: topology.json parses" "us-east-1b use1-az4 downward" "$(jq -r '"\(.rack) \(.zoneId) \(.source)"' "$OUT/topology.json")"
if command -v kcat >/dev/null; then
    expect_eq "downward: a real Kafka client parser (librdkafka via kcat -F) reads client.rack" \
        "client.rack = us-east-1b" "$(kcat -F "$OUT/rack.properties" -X dump 2>/dev/null | grep '^client.rack')"
fi
expect_eq "downward: instance metadata not asked" 0 "$(standin_requests "$AWS_URL")"
grep -q 'source=downward' "$LOG"; tap $? "downward: the log says which source answered"

run_init downward-zoneid -- --podinfo-dir "$TW_FIXTURES/podinfo" --rack zone-id --sources downward
expect_eq "downward --rack zone-id" "client.rack=use1-az4" "$(cat "$OUT/rack.properties")"

mkdir -p "$TW_TMP/pod-labels"
printf 'rack.example.com/name="r17"\ntopology.kubernetes.io/zone="us-east-1a"' >"$TW_TMP/pod-labels/labels"
run_init downward-label -- --podinfo-dir "$TW_TMP/pod-labels" --rack label:rack.example.com/name --sources downward
expect_eq "downward --rack label:KEY from the labels file" "client.rack=r17" "$(cat "$OUT/rack.properties")"

mkdir -p "$TW_TMP/hostile"
printf 'topology.kubernetes.io/zone="us-east-1b; rm -rf /"\ntopology.kubernetes.io/region="us-east-1"' >"$TW_TMP/hostile/annotations"
run_init hostile -- --podinfo-dir "$TW_TMP/hostile" --sources downward,imds --imds-endpoint "$AWS_URL" --cloud aws
expect_eq "hostile label value rejected, imds fills the zone" us-east-1b "$(envval "$OUT/topology.env" CLIENT_RACK)"
expect_eq "hostile value: source is imds" imds "$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"
grep -q 'value rejected' "$LOG"; tap $? "hostile value: a log line says it was rejected"

printf 'topology.kubernetes.io/zone="unterminated' >"$TW_TMP/hostile/annotations"
run_init malformed-podinfo -- --podinfo-dir "$TW_TMP/hostile" --sources downward --on-missing fail
expect_eq "malformed Downward-API file: exit 1 with --on-missing fail" 1 "$RC"

# --- kubernetes -----------------------------------------------------------
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
run_init kube $(incluster) -- "${KFLAGS[@]}" --sources kubernetes
expect_eq "kubernetes: exit 0" 0 "$RC"
expect_eq "kubernetes: zone" us-east-1b "$(envval "$OUT/topology.env" CLIENT_RACK)"
expect_eq "kubernetes: zone id" use1-az4 "$(envval "$OUT/topology.env" TOPOLOGY_ZONE_ID)"
expect_eq "kubernetes: source" kubernetes "$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"
stats=$(standin_stats "$KUBE_URL")
expect_eq "kubernetes: one request" 1 "$(jq -r .requests <<<"$stats")"
jq -r .lastAccept <<<"$stats" | grep -q 'as=PartialObjectMetadata;g=meta.k8s.io;v=v1'; tap $? "kubernetes: asks for metadata only"
jq -r .lastUserAgent <<<"$stats" | grep -q '^topowire-init/'; tap $? "kubernetes: sends User-Agent topowire-init/VERSION"
token=$(cat "$KUBE_TOKEN_FILE")
! grep -qF "$token" "$LOG"; tap $? "kubernetes: the token never appears in the log"

for fixture in gke-node-full aks-node-full legacy-labels-only; do
    name=$(jq -r .metadata.name "$TW_FIXTURES/nodes/$fixture.json")
    want=$(jq -r '.metadata.labels["topology.kubernetes.io/zone"] // .metadata.labels["failure-domain.beta.kubernetes.io/zone"]' "$TW_FIXTURES/nodes/$fixture.json")
    run_init "kube-$fixture" $(incluster) NODE_NAME="$name" -- "${KFLAGS[@]}" --sources kubernetes
    expect_eq "kubernetes: $fixture zone" "$want" "$(envval "$OUT/topology.env" CLIENT_RACK)"
done

name=$(jq -r .metadata.name "$TW_FIXTURES/nodes/bare-metal-no-topology.json")
run_init kube-bare $(incluster) NODE_NAME="$name" -- "${KFLAGS[@]}" --sources kubernetes
expect_eq "kubernetes: bare-metal node without labels gives an empty rack, exit 0" "0:none:" \
    "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE):$(envval "$OUT/topology.env" CLIENT_RACK)"

run_init kubeconfig -- --kubeconfig "$KUBECONFIG_FILE" --sources kubernetes
expect_eq "kubernetes through --kubeconfig" us-east-1b "$(envval "$OUT/topology.env" CLIENT_RACK)"
run_init kubeconfig-env KUBECONFIG="$KUBECONFIG_FILE" -- --sources kubernetes
expect_eq "kubernetes through \$KUBECONFIG" us-east-1b "$(envval "$OUT/topology.env" CLIENT_RACK)"
# $KUBECONFIG is a list merged as kubectl merges it; missing files are skipped, and it wins over
# in-cluster (whose API server here would not answer).
run_init kubeconfig-list KUBECONFIG="$TW_TMP/nope.yaml::$KUBECONFIG_FILE" \
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=1 -- --sources kubernetes
expect_eq "kubernetes through a \$KUBECONFIG list, before in-cluster" 0:us-east-1b \
    "$RC:$(envval "$OUT/topology.env" CLIENT_RACK)"
# Not in a cluster and nothing named: ~/.kube/config.
mkdir -p "$TW_TMP/home/.kube" && cp "$KUBECONFIG_FILE" "$TW_TMP/home/.kube/config"
run_init kubeconfig-home -- --sources kubernetes
expect_eq "kubernetes through ~/.kube/config" 0:us-east-1b "$RC:$(envval "$OUT/topology.env" CLIENT_RACK)"
rm -r "$TW_TMP/home/.kube"
run_init kubeconfig-missing -- --kubeconfig "$TW_TMP/nope.yaml" --sources kubernetes
expect_eq "a kubeconfig that does not exist is a configuration error (exit 2)" 2 "$RC"

"$TW_ROOT/tests/certs.sh" "$TW_TMP/other-ca" >/dev/null 2>&1
run_init kube-wrong-ca $(incluster) -- --token-file "$KUBE_TOKEN_FILE" --ca-file "$TW_TMP/other-ca/ca.pem" --sources kubernetes
expect_eq "kubernetes: a server the CA does not vouch for is never believed" "0:none" "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"
grep -qi 'tls\|certificate' "$LOG"; tap $? "kubernetes: the log names the TLS failure"

run_init kube-nonode $(incluster) NODE_NAME= -- "${KFLAGS[@]}" --sources kubernetes
grep -q 'NODE_NAME' "$LOG"; tap $? "kubernetes: a missing NODE_NAME is explained in the log"

# faults: each falls through to instance metadata (AWS stand-in) within the deadline
for fault in 401 403 404 500 garbage redirect huge drop; do
    standin_fault "$KUBE_URL" "$fault"
    standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
    run_init "kube-$fault" $(incluster) -- "${KFLAGS[@]}" --sources kubernetes,imds \
        --imds-endpoint "$AWS_URL" --cloud aws --timeout 4s
    expect_eq "kubernetes $fault: falls back to imds" "0:imds:us-east-1b" \
        "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE):$(envval "$OUT/topology.env" CLIENT_RACK)"
done
expect_eq "redirect: the target was never asked" 0 "$(standin_stats "$KUBE_URL" | jq -r '.redirectHits // 0')"

standin_fault "$KUBE_URL" 403
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
run_init kube-403-once $(incluster) -- "${KFLAGS[@]}" --sources kubernetes --timeout 4s
expect_eq "403: moves on at once (one request)" 1 "$(standin_requests "$KUBE_URL")"
grep -q 'forbidden' "$LOG"; tap $? "403: the Status message reaches the log"

standin_fault "$KUBE_URL" 401
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
run_init kube-401 $(incluster) -- "${KFLAGS[@]}" --sources kubernetes --timeout 4s
expect_eq "401: the token is re-read and tried once more (two requests)" 2 "$(standin_requests "$KUBE_URL")"

standin_fault "$KUBE_URL" flaky:2:429
run_init kube-429 $(incluster) -- "${KFLAGS[@]}" --sources kubernetes --timeout 8s
expect_eq "429 twice with Retry-After, then success" "0:kubernetes" "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"

standin_fault "$KUBE_URL" flaky:2:503
run_init kube-503 $(incluster) -- "${KFLAGS[@]}" --sources kubernetes --timeout 8s
expect_eq "503 twice, then success" "0:kubernetes" "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"

for fault in stall hang slow:20000 503; do
    standin_fault "$KUBE_URL" "$fault"
    run_init "kube-deadline-${fault%%:*}" $(incluster) -- "${KFLAGS[@]}" --sources kubernetes --timeout 2s
    [ "$MS" -lt 3000 ]; tap $? "kubernetes $fault: the run ends within --timeout 2s (took ${MS} ms)"
    expect_eq "kubernetes $fault: exit 0 with an empty rack" "0:none" "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"
done
standin_fault "$KUBE_URL" ""

# --- instance metadata ----------------------------------------------------
standin_ctl "$AWS_URL" POST /_control/reset >/dev/null
run_init aws -- --sources imds --imds-endpoint "$AWS_URL" --cloud aws
expect_eq "aws imdsv2: zone, zone id, region" "us-east-1b use1-az4 us-east-1" \
    "$(jq -r '"\(.zone) \(.zoneId) \(.region)"' "$OUT/topology.json")"
expect_eq "aws: source imds" imds "$(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"

run_init aws-env AWS_EC2_METADATA_SERVICE_ENDPOINT="$AWS_URL" -- --sources imds --cloud aws --rack zone-id
expect_eq "aws: AWS_EC2_METADATA_SERVICE_ENDPOINT and --rack zone-id" "client.rack=use1-az4" "$(cat "$OUT/rack.properties")"

standin_ctl "$AWS_URL" POST /_control/reset >/dev/null
run_init aws-disabled AWS_EC2_METADATA_DISABLED=true -- --sources imds --imds-endpoint "$AWS_URL" --cloud aws
expect_eq "aws: AWS_EC2_METADATA_DISABLED=true asks nothing" "0:0" "$RC:$(standin_requests "$AWS_URL")"

standin_fault "$AWS_URL" put-hang
run_init aws-hoplimit -- --sources imds --imds-endpoint "$AWS_URL" --cloud aws --timeout 5s
expect_eq "aws: token PUT hangs (hop limit 1): IMDSv1 fallback" us-east-1b "$(envval "$OUT/topology.env" CLIENT_RACK)"
[ "$MS" -lt 2000 ]; tap $? "aws: the hanging PUT costs well under 2 s (took ${MS} ms)"

standin_fault "$AWS_URL" put-hang
standin_ctl "$AWS_URL" POST "/_control/fault?add=v2-only" >/dev/null
run_init aws-v2only -- --sources imds --imds-endpoint "$AWS_URL" --cloud aws --timeout 5s
expect_eq "aws: PUT hangs and v1 is refused: empty rack, exit 0" "0:none:" \
    "$RC:$(envval "$OUT/topology.env" TOPOLOGY_SOURCE):$(envval "$OUT/topology.env" CLIENT_RACK)"

standin_fault "$AWS_URL" no-zone-id
run_init aws-nozoneid -- --sources imds --imds-endpoint "$AWS_URL" --cloud aws --rack zone-id --on-missing fail
expect_eq "aws: no availability-zone-id and --rack zone-id --on-missing fail: exit 1" 1 "$RC"
expect_eq "aws: ... the zone is still recorded" us-east-1b "$(envval "$OUT/topology.env" TOPOLOGY_ZONE)"

standin_fault "$AWS_URL" bad-zone
run_init aws-badzone -- --sources imds --imds-endpoint "$AWS_URL" --cloud aws
expect_eq "aws: a hostile zone value is never written" "" "$(envval "$OUT/topology.env" CLIENT_RACK)"
standin_fault "$AWS_URL" ""

run_init gcp -- --sources imds --imds-endpoint "$GCP_URL" --cloud gcp
expect_eq "gcp: zone and derived region" "europe-west1-d europe-west1" "$(jq -r '"\(.zone) \(.region)"' "$OUT/topology.json")"
run_init azure -- --sources imds --imds-endpoint "$AZURE_URL" --cloud azure
expect_eq "azure: zone in the AKS form, region" "eastus-2 eastus" "$(jq -r '"\(.zone) \(.region)"' "$OUT/topology.json")"

# --- nothing answers --------------------------------------------------------
dead="http://127.0.0.1:9"
run_init dead -- --sources downward,kubernetes,imds --imds-endpoint "$dead" --cloud aws
expect_eq "nothing answers: exit 0 with --on-missing empty" 0 "$RC"
expect_eq "nothing answers: every file written, empty rack, source none" "client.rack=:none:" \
    "$(cat "$OUT/rack.properties"):$(envval "$OUT/topology.env" TOPOLOGY_SOURCE):$(cat "$OUT/client.rack")"
[ -s "$OUT/topology.json" ]; tap $? "nothing answers: topology.json written"
grep -q 'empty rack' "$LOG"; tap $? "nothing answers: a warning says so"
run_init dead-fail -- --sources imds --imds-endpoint "$dead" --cloud aws --on-missing fail
expect_eq "nothing answers with --on-missing fail: exit 1" 1 "$RC"

# --- the whole chain --------------------------------------------------------
standin_fault "$KUBE_URL" ""
run_init chain $(incluster) -- "${KFLAGS[@]}" --podinfo-dir "$EMPTY_PODINFO" --rack zone-id \
    --imds-endpoint "$AWS_URL" --cloud aws
expect_eq "chain: no podinfo, kubernetes answers the zone id" "kubernetes:use1-az4" \
    "$(envval "$OUT/topology.env" TOPOLOGY_SOURCE):$(envval "$OUT/topology.env" CLIENT_RACK)"

# --- --print, usage, writing ------------------------------------------------
run_init print -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward --print >"$TW_TMP/print.out"
expect_eq "--print: prints topology.env" "us-east-1b" "$(sh -c ". '$TW_TMP/print.out'; printf %s \"\$CLIENT_RACK\"")"
expect_eq "--print: writes no file" 0 "$(ls -A "$OUT" | wc -l)"

for bad in "--rack bogus" "--sources downward,nope" "--timeout forever" "--on-missing maybe" \
    "--cloud mars" "--log-format xml" "--frobnicate" "--zone-labels Bad/Key/x" "stray"; do
    # shellcheck disable=SC2086
    run_init usage -- $bad
    expect_eq "usage error ($bad): exit 2" 2 "$RC"
done
run_init help -- --help >/dev/null
expect_eq "--help: exit 0" 0 "$RC"

run_init unwritable -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward --out-dir /proc/topowire-cannot-write
expect_eq "an unwritable out dir: exit 3" 3 "$RC"

# the files are replaced, never appended to; no temp files left
run_init rewrite -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward --out-dir "$TW_TMP/rewritten"
run_init rewrite2 -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward --rack region --out-dir "$TW_TMP/rewritten"
expect_eq "a second run replaces the files" "client.rack=us-east-1" "$(cat "$TW_TMP/rewritten/rack.properties")"
expect_eq "no temporary files are left behind" "client.rack rack.properties topology.env topology.json" "$(ls "$TW_TMP/rewritten" | sort | tr '\n' ' ' | sed 's/ $//')"

run_init jsonlog -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward --log-format json
jq -e -s 'length > 0 and all(.[]; has("time") and has("level") and has("msg"))' "$LOG" >/dev/null
tap $? "--log-format json: every log line is a JSON object"

# --- a hostile NODE_NAME, a --kubeconfig that never delivers ------------------
# NODE_NAME is the pod's spec.nodeName: a value that is not a node name is rejected like any bad
# source value (logged, treated as missing) and the pod still starts; --node is a usage error.
run_init node-newline "NODE_NAME=$NODE"$'\nCLIENT_RACK=forged' -- \
    --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward
expect_eq "NODE_NAME with a newline: exit 0 (the pod still starts)" 0 "$RC"
expect_eq "... topology.env holds exactly one CLIENT_RACK line" 1 "$(grep -c '^CLIENT_RACK=' "$OUT/topology.env")"
expect_eq "... and it is the real rack" us-east-1b "$(envval "$OUT/topology.env" CLIENT_RACK)"
expect_eq "... TOPOLOGY_NODE is empty" "" "$(envval "$OUT/topology.env" TOPOLOGY_NODE)"
check "... and the log says the value was rejected" -- grep -q 'value rejected source=env.*NODE_NAME' "$LOG"
long=$(head -c 130000 /dev/zero | tr '\0' a)
run_init node-long "NODE_NAME=$long" -- --podinfo-dir "$TW_FIXTURES/podinfo" --sources downward
expect_eq "a 130 KB NODE_NAME: exit 0, not cut but rejected" "0 :130000 bytes" \
    "$RC $(envval "$OUT/topology.env" TOPOLOGY_NODE):$(grep -o '130000 bytes' "$LOG" | head -1)"
run_init node-kube "NODE_NAME=Bad_Node" $(incluster) -- "${KFLAGS[@]}" --sources kubernetes --timeout 4s
expect_eq "an invalid NODE_NAME skips the kubernetes source: exit 0, empty rack" "0 none" \
    "$RC $(envval "$OUT/topology.env" TOPOLOGY_SOURCE)"
run_init node-flag -- --node "$NODE"$'\nCLIENT_RACK=forged' --sources downward
expect_eq "--node with a newline is a usage error: exit 2" 2 "$RC"
check "... naming the flag" -- grep -q -- '--node: .* is not a node name' "$LOG"

mkfifo "$TW_TMP/kubeconfig.fifo" "$TW_TMP/token.fifo"
run_init kubeconfig-fifo -- --kubeconfig "$TW_TMP/kubeconfig.fifo" --sources kubernetes --timeout 2s
[ "$MS" -lt 4000 ]; tap $? "a --kubeconfig FIFO nobody writes: the run ends within --timeout 2s (took ${MS} ms)"
expect_eq "... exit 2, an unreadable --kubeconfig" 2 "$RC"
check "... and the log says why" -- grep -q 'is not a regular file' "$LOG"
run_init kubeconfig-fifo-env "KUBECONFIG=$TW_TMP/kubeconfig.fifo" -- --sources kubernetes --timeout 2s
[ "$MS" -lt 4000 ]; tap $? "... the same through \$KUBECONFIG (took ${MS} ms, exit $RC)"
run_init token-fifo $(incluster) -- --token-file "$TW_TMP/token.fifo" --ca-file "$KUBE_CA" \
    --sources kubernetes --timeout 2s
[ "$MS" -lt 4000 ] && [ "$RC" -eq 0 ]
tap $? "an in-cluster token file that is a FIFO: exit 0 within --timeout 2s (took ${MS} ms, exit $RC)"

# --- leaks: valgrind over the main paths (plain build only) ------------------
if [ "$TW_VARIANT" = plain ] && command -v valgrind >/dev/null; then
    INIT_REAL=$INIT
    run_vg() { # name, args...
        local name=$1; shift
        OUT=$TW_TMP/vg-$name; mkdir -p "$OUT"
        env -u KUBECONFIG NODE_NAME=$NODE KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KUBE_PORT \
            valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
            "$INIT_REAL" --out-dir "$OUT" --podinfo-dir "$EMPTY_PODINFO" "${KFLAGS[@]}" "$@" 2>"$OUT.log"
        local rc=$?
        [ $rc -ne 99 ]; tap $? "valgrind: no leak or memory error ($name)"
        [ $rc -eq 99 ] && sed 's/^/#   /' "$OUT.log" | head -30
    }
    run_vg downward --podinfo-dir "$TW_FIXTURES/podinfo"
    run_vg kubernetes --sources kubernetes --timeout 8s
    standin_fault "$KUBE_URL" flaky:1:429
    run_vg kubernetes-retry --sources kubernetes --timeout 8s
    standin_fault "$KUBE_URL" 403
    run_vg fallback-imds --imds-endpoint "$AWS_URL" --cloud aws --timeout 8s
    standin_fault "$KUBE_URL" ""
    run_vg kubeconfig --kubeconfig "$KUBECONFIG_FILE" --sources kubernetes --timeout 8s
    run_vg gcp --sources imds --imds-endpoint "$GCP_URL" --cloud gcp
    run_vg azure --sources imds --imds-endpoint "$AZURE_URL" --cloud azure
    run_vg dead --sources imds --imds-endpoint http://127.0.0.1:9 --cloud aws
fi

done_testing
