#!/usr/bin/env bash
# downward.sh - the downward injection end to end: topowire-webhook in binding mode against the
# kube-apiserver stand-in. A pod labelled topowire.io/inject: "downward" is admitted (patch applied
# with kubectl), its Binding is admitted, the Binding's annotations go onto the pod as the API
# server does, and a small kubelet emulation resolves the pod's env and Downward-API files from
# them; kcat then takes client.rack from the file. Every --rack kind, the per-pod rack annotation,
# idempotency, a variable the container sets itself, the pod created with spec.nodeName, a
# namespace without binding, a binding the webhook never saw, and the start-up refusal.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../standin.sh"

HOOK=$TW_BIN_DIR/topowire-webhook
FIX=$TW_FIXTURES/admission
POD=$FIX/downward/pod-create.json
NAME=topowire-webhook.topowire-system.svc
CERTS=$TW_TMP/certs
NODE=ip-10-0-41-17.ec2.internal
KUBELET=(/usr/bin/python3 "$TW_ROOT/tests/integration/kubelet-downward.py")
mkdir -p "$CERTS"
"$HOOK" certgen --service topowire-webhook --namespace topowire-system --out-dir "$CERTS" 2>/dev/null
tap $? "certgen makes the serving certificate"

start_kube
# A node label a site may rack by, copied only when --copy-labels names it.
standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=rack.example.com/name&value=r17" >/dev/null

# start_hook (tests/lib.sh) gives every start these; start_ready also waits until it is ready.
HOOK_ARGS=(--tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" --kubeconfig "$KUBECONFIG_FILE")
start_ready() { start_hook "$@" && wait_ready; }
post() { # post PATH FILE: the response review
    curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary @"$2" "https://$NAME:$PORT$1"
}
# apply REVIEW RESPONSE OUT: the review's object with the response's patch applied by kubectl.
apply() {
    local patch
    jq '.request.object' "$1" >"$3.orig"
    patch=$(jq -r '.response.patch // empty' <<<"$2" | base64 -d)
    if [ -z "$patch" ]; then cp "$3.orig" "$3"; return; fi
    kubectl patch --local --type=json -f "$3.orig" -p "$patch" -o json >"$3" 2>"$3.err" ||
        { sed 's/^/#   /' "$3.err"; return 1; }
}
# run_pod REVIEW [BIND]: admits the pod; with BIND, admits its Binding to $NODE and lets the
# "API server" carry the Binding's annotations over; then the kubelet emulation resolves it.
# Sets RESP (the pod review's response) and VIEW (the kubelet's JSON).
run_pod() {
    RESP=$(post /mutate/pods "$1")
    apply "$1" "$RESP" "$TW_TMP/pod.json" || return 1
    if [ "${2:-}" = bind ]; then
        jq --arg n "$(jq -r .metadata.name "$TW_TMP/pod.json")" --arg node "$NODE" \
            '.request.object.metadata.name = $n | .request.name = $n | .request.object.target.name = $node' \
            "$FIX/binding-create.json" >"$TW_TMP/bind-review.json"
        apply "$TW_TMP/bind-review.json" "$(post /mutate/binding "$TW_TMP/bind-review.json")" \
            "$TW_TMP/binding.json" || return 1
        VIEW=$("${KUBELET[@]}" "$TW_TMP/pod.json" --binding "$TW_TMP/binding.json")
    else
        VIEW=$("${KUBELET[@]}" "$TW_TMP/pod.json")
    fi
}
view() { jq -r "$1" <<<"$VIEW"; }
exe='.["spark-kubernetes-executor"]'
# kcat_rack VALUE: the client.rack librdkafka takes from -X client.rack=VALUE.
kcat_rack() { kcat -X client.rack="$1" -X dump 2>&1 | sed -n 's/^client\.rack = //p'; }

# --- --rack zone (the default) --------------------------------------------------------
start_ready "$TW_TMP/hook.log" \
    --copy-labels topology.kubernetes.io/zone,topology.kubernetes.io/region,topology.k8s.aws/zone-id,rack.example.com/name
tap $? "serve starts in binding mode"
run_pod "$POD" bind
tap $? "the downward pod and its binding are admitted; kubectl applies both patches"
expect_eq "no init container, one volume more, no image pulled for it" "null 2" \
    "$(jq -c '"\(.spec.initContainers) \(.spec.volumes | length)"' -r "$TW_TMP/pod.json")"
expect_eq "the pod is marked injected" "$("$HOOK" version | awk '{print $NF}')" \
    "$(jq -r '.metadata.annotations["topowire.io/injected"]' "$TW_TMP/pod.json")"
expect_eq "the outcome is downward_injected" 1 \
    "$(metric 'topowire_webhook_reviews_total{route="pods",outcome="downward_injected"}')"
expect_eq "files: client.rack zone zone-id region, as the kubelet writes them" \
    "us-east-1b us-east-1b use1-az4 us-east-1" \
    "$(view "$exe.files | \"\(.[\"/etc/topowire/client.rack\"]) \(.[\"/etc/topowire/zone\"]) \(.[\"/etc/topowire/zone-id\"]) \(.[\"/etc/topowire/region\"])\"")"
expect_eq "env: CLIENT_RACK TOPOLOGY_ZONE TOPOLOGY_ZONE_ID TOPOLOGY_REGION" \
    "us-east-1b us-east-1b use1-az4 us-east-1" \
    "$(view "$exe.env | \"\(.CLIENT_RACK) \(.TOPOLOGY_ZONE) \(.TOPOLOGY_ZONE_ID) \(.TOPOLOGY_REGION)\"")"
expect_eq "the executor's own variables are untouched" "hadoop 7" \
    "$(view "$exe.env | \"\(.SPARK_USER) \(.SPARK_EXECUTOR_ID)\"")"
expect_eq "kcat -X client.rack=\$(cat /etc/topowire/client.rack) sends us-east-1b" us-east-1b \
    "$(kcat_rack "$(view "$exe.files[\"/etc/topowire/client.rack\"]")")"
expect_eq "the log shipper, which sets TOPOLOGY_ZONE itself, keeps its value and gets the rest" \
    "unknown us-east-1b us-east-1b" \
    "$(view '.["log-shipper"] | "\(.env.TOPOLOGY_ZONE) \(.env.CLIENT_RACK) \(.files["/etc/topowire/client.rack"])"')"
jq -r '.response.warnings[]?' <<<"$RESP" | grep -q '"log-shipper" already sets TOPOLOGY_ZONE'
tap $? "... and the review warns about it"
expect_eq "the binding was counted as given topology" 1 \
    "$(metric 'topowire_webhook_topology_added_total{object="binding"}')"

# --- idempotency -------------------------------------------------------------------------
jq --slurpfile p "$TW_TMP/pod.json" '.request.object = $p[0]' "$POD" >"$TW_TMP/again.json"
expect_eq "a second admission of the patched pod changes nothing" "true null" \
    "$(post /mutate/pods "$TW_TMP/again.json" | jq -r '"\(.response.allowed) \(.response.patch)"')"
expect_eq "... and is counted as already_injected" 1 \
    "$(metric 'topowire_webhook_reviews_total{route="pods",outcome="already_injected"}')"

# --- the rack through the pod's annotation, each kind -----------------------------------
for kind in "zone-id use1-az4" "region us-east-1" "label:rack.example.com/name r17" "zone us-east-1b"; do
    set -- $kind
    jq --arg r "$1" '.request.object.metadata.annotations = {"topowire.io/rack": $r}' "$POD" >"$TW_TMP/ann.json"
    run_pod "$TW_TMP/ann.json" bind
    expect_eq "annotation topowire.io/rack: $1 -> file, env and kcat say $2" "$2 $2 $2" \
        "$(view "$exe | \"\(.files[\"/etc/topowire/client.rack\"]) \(.env.CLIENT_RACK)\"") $(kcat_rack "$(view "$exe.files[\"/etc/topowire/client.rack\"]")")"
done

# --- a binding the webhook never saw (it was down): empty values, Kafka's default ---------
run_pod "$POD"
expect_eq "without the binding's annotations the files and env are empty" "|||" \
    "$(view "$exe | \"\(.files[\"/etc/topowire/client.rack\"])|\(.files[\"/etc/topowire/zone\"])|\(.env.CLIENT_RACK)|\(.env.TOPOLOGY_REGION)\"")"
expect_eq "... and kcat gets an empty client.rack (unset: fetch from the leader)" "" \
    "$(kcat_rack "$(view "$exe.files[\"/etc/topowire/client.rack\"]")")"

# --- a pod created with spec.nodeName: topology and injection in one patch ---------------
jq '.request.object.metadata.labels["topowire.io/inject"] = "downward"' \
    "$FIX/pod-create-with-nodename.json" >"$TW_TMP/nodename.json"
run_pod "$TW_TMP/nodename.json"
tap $? "a downward pod created with spec.nodeName is admitted; kubectl applies the one patch"
expect_eq "... it carries the topology annotations and the injection" "us-east-1b true" \
    "$(jq -r '"\(.metadata.annotations["topology.kubernetes.io/zone"]) \(.metadata.annotations | has("topowire.io/injected"))"' "$TW_TMP/pod.json")"
expect_eq "... and its files and env are filled with no binding at all" "us-east-1b use1-az4 us-east-1b" \
    "$(view '.probe | "\(.files["/etc/topowire/client.rack"]) \(.files["/etc/topowire/zone-id"]) \(.env.CLIENT_RACK)"')"
expect_eq "... the pod was counted as given topology" 1 \
    "$(metric 'topowire_webhook_topology_added_total{object="pod"}')"

# --- a namespace binding mode does not serve -------------------------------------------------
RESP=$(post /mutate/pods/no-binding "$POD")
apply "$POD" "$RESP" "$TW_TMP/nb.json"
expect_eq "/mutate/pods/no-binding still adds the volume" "topowire" \
    "$(jq -r '.spec.volumes[-1].name' "$TW_TMP/nb.json")"
jq -r '.response.warnings[]?' <<<"$RESP" | grep -q 'topowire.io/binding=enabled.*will stay empty'
tap $? "... and warns that the files will stay empty there"
resp=$(post /mutate/pods/no-binding "$TW_TMP/nodename.json")
expect_eq "... and gives a pod with spec.nodeName no topology there" "null" \
    "$(apply "$TW_TMP/nodename.json" "$resp" "$TW_TMP/nb2.json" && jq -c '.metadata.annotations["topology.kubernetes.io/zone"]' "$TW_TMP/nb2.json")"
stop_hook

# --- each --rack flag ----------------------------------------------------------------------
for kind in "zone-id use1-az4" "region us-east-1" "label:rack.example.com/name r17"; do
    set -- $kind
    start_ready "$TW_TMP/hook-$2.log" --rack "$1" \
        --copy-labels topology.kubernetes.io/zone,topology.kubernetes.io/region,topology.k8s.aws/zone-id,rack.example.com/name
    run_pod "$POD" bind
    expect_eq "--rack $1: client.rack file, CLIENT_RACK and kcat say $2" "$2 $2 $2" \
        "$(view "$exe | \"\(.files[\"/etc/topowire/client.rack\"]) \(.env.CLIENT_RACK)\"") $(kcat_rack "$(view "$exe.files[\"/etc/topowire/client.rack\"]")")"
    stop_hook
done
start_ready "$TW_TMP/hook-labels.log" --copy-as labels --out-dir /etc/rack
run_pod "$POD" bind
expect_eq "--copy-as labels --out-dir /etc/rack: read from the labels, mounted there" "us-east-1b us-east-1b" \
    "$(view "$exe | \"\(.files[\"/etc/rack/client.rack\"]) \(.env.CLIENT_RACK)\"")"
stop_hook
expect_eq "SIGTERM: the server exits 0 (no sanitizer report in the sanitized build)" 0 "$?"

# --- the start-up refusal ------------------------------------------------------------------
"$HOOK" serve --listen 127.0.0.1:0 --metrics-listen "" --tls-cert-file "$CERTS/tls.crt" \
    --tls-key-file "$CERTS/tls.key" --kubeconfig "$KUBECONFIG_FILE" \
    --rack label:rack.example.com/name >"$TW_TMP/refuse.log" 2>&1
expect_eq "--rack label:KEY with KEY not among --copy-labels: exit 2" 2 $?
grep -q 'rack.example.com/name.*--copy-labels' "$TW_TMP/refuse.log"
tap $? "... and the error names the label and --copy-labels"
grep -q '"msg":"serving"' "$TW_TMP/refuse.log"
expect_eq "... before serving anything" 1 $?
done_testing
