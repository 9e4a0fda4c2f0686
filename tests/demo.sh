#!/usr/bin/env bash
# tests/demo.sh - `make demo`: a local demo cluster on loopback. Starts the
# kube-apiserver and AWS instance-metadata stand-ins, runs topowire-init the
# three ways a pod meets it, and prints the files it wrote.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$TW_ROOT/tests/standin.sh"
make -s -C "$TW_ROOT" check-build >/dev/null

INIT=$TW_BIN_DIR/topowire-init
NODE=ip-10-0-41-17.ec2.internal
start_kube
start_imds aws

show() {
    local dir=$1 f
    for f in topology.env rack.properties client.rack topology.json; do
        printf -- '--- %s/%s\n' "$dir" "$f"
        cat "$dir/$f"
        [ "$f" = client.rack ] && echo "   (no trailing newline)"
    done
    echo
}

cat <<MSG
topowire demo: a loopback kube-apiserver at $KUBE_URL (TLS, bearer token, node
$NODE in us-east-1b / use1-az4) and an AWS instance-metadata
service at $IMDS_URL (IMDSv2).

1) In the pod, with the node's topology already on the pod (binding webhook or
   Kubernetes 1.35 PodTopologyLabels): read from the Downward-API files, no API call.
MSG
NODE_NAME=$NODE "$INIT" --podinfo-dir "$TW_FIXTURES/podinfo" --out-dir "$TW_TMP/one" \
    --sources downward,kubernetes,imds --imds-endpoint "$IMDS_URL" --cloud aws
show "$TW_TMP/one"

cat <<MSG
2) In the pod, no Downward-API files: ask the API server for the node's metadata,
   with the service-account token and CA. --rack zone-id, as MSK and Confluent Cloud want.
MSG
env -u KUBECONFIG NODE_NAME=$NODE KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$KUBE_PORT" \
    "$INIT" --token-file "$KUBE_TOKEN_FILE" --ca-file "$KUBE_CA" --podinfo-dir "$TW_TMP/none" \
    --out-dir "$TW_TMP/two" --rack zone-id --imds-endpoint "$IMDS_URL" --cloud aws
show "$TW_TMP/two"

cat <<MSG
3) The API server forbids reading nodes (no RBAC): fall back to instance metadata
   (IMDSv2 token, then placement/availability-zone, -id and region).
MSG
standin_fault "$KUBE_URL" 403
env -u KUBECONFIG NODE_NAME=$NODE KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$KUBE_PORT" \
    "$INIT" --token-file "$KUBE_TOKEN_FILE" --ca-file "$KUBE_CA" --podinfo-dir "$TW_TMP/none" \
    --out-dir "$TW_TMP/three" --imds-endpoint "$IMDS_URL" --cloud aws
show "$TW_TMP/three"

standin_fault "$KUBE_URL" ""
echo "4) On a laptop against a cluster (here the demo one), print without writing:"
echo "   topowire-init --kubeconfig ~/.kube/config --node $NODE --print"
env -u KUBECONFIG "$INIT" --kubeconfig "$KUBECONFIG_FILE" --node "$NODE" --sources kubernetes --print
