# tests/standin.sh - sourced after tests/lib.sh by integration tests: start the
# loopback kube-apiserver and instance-metadata stand-ins and drive their
# control API. docs/testing.md describes the stand-ins themselves.
#
#   start_kube [ARGS...]        kube stand-in over TLS; exports KUBE_URL KUBE_PORT KUBE_CA
#                               KUBE_TOKEN_FILE KUBE_LOG KUBECONFIG_FILE (and KUBE_PID,
#                               KUBE_NODES_DIR)
#   start_imds CLOUD [ARGS...]  aws|gcp|azure metadata stand-in; exports IMDS_URL IMDS_LOG
#                               (and IMDS_PORT, IMDS_PID)
#   standin_fault URL NAME      replace the faults (NAME may be a comma list; "" clears)
#   standin_stats URL           print the stats JSON
#   standin_requests URL        print the number of data requests
#   standin_ctl URL METHOD PATH [CURL-ARGS...]   any control call; prints the answer
#   standin_stop PID            SIGTERM, wait, return the exit status
#
# Each start gets its own port file, log and stderr file (kube-1.log, kube-2.log,
# ...); the most recent start wins the exported variables.

TW_STANDIN=${TW_STANDIN:-$TW_TEST_DIR/topowire-standin}
_standin_n=0

# _standin_launch NAME ARGS...: starts the stand-in in the background and waits
# for its port file. Sets _standin_port, _standin_pid, _standin_log.
_standin_launch() {
    local name=$1; shift
    _standin_n=$((_standin_n + 1))
    local base="$TW_TMP/$name-$_standin_n"
    rm -f "$base.port"
    _standin_log="$base.log"
    : >"$_standin_log"
    if [ ! -x "$TW_STANDIN" ]; then
        echo "# stand-in not built: $TW_STANDIN" >&2
        return 1
    fi
    bg "$TW_STANDIN" "$@" --port-file "$base.port" --log "$_standin_log" 2>"$base.err"
    _standin_pid=$BG_PID
    local i=0
    while [ ! -s "$base.port" ]; do
        if ! kill -0 "$_standin_pid" 2>/dev/null; then
            echo "# $name stand-in exited before listening:" >&2
            sed 's/^/#   /' "$base.err" >&2
            return 1
        fi
        i=$((i + 1))
        if [ $i -gt 400 ]; then
            echo "# $name stand-in did not listen within 20 s" >&2
            return 1
        fi
        sleep 0.05
    done
    _standin_port=$(cat "$base.port")
}

# start_kube [ARGS...]: the API server stand-in with the test CA, a token file
# and the fixture nodes (copied once into $TW_TMP/nodes so tests may edit them).
start_kube() {
    "$TW_ROOT/tests/certs.sh" "$TW_TMP/certs" || return 1
    if [ ! -s "$TW_TMP/token" ]; then
        printf 'tw-test-token-%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$TW_TMP/token"
    fi
    if [ ! -d "$TW_TMP/nodes" ]; then
        mkdir -p "$TW_TMP/nodes"
        cp "$TW_FIXTURES"/nodes/*.json "$TW_TMP/nodes/"
    fi
    _standin_launch kube kube --tls-cert "$TW_TMP/certs/server.pem" \
        --tls-key "$TW_TMP/certs/server-key.pem" --token-file "$TW_TMP/token" \
        --nodes-dir "$TW_TMP/nodes" "$@" || return 1
    KUBE_PORT=$_standin_port
    KUBE_URL="https://127.0.0.1:$KUBE_PORT"
    KUBE_CA="$TW_TMP/certs/ca.pem"
    KUBE_TOKEN_FILE="$TW_TMP/token"
    KUBE_LOG=$_standin_log
    KUBE_PID=$_standin_pid
    KUBE_NODES_DIR="$TW_TMP/nodes"
    KUBECONFIG_FILE="$TW_TMP/kubeconfig.yaml"
    cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: $KUBE_URL
    certificate-authority: $KUBE_CA
users:
- name: standin
  user:
    token: $(head -n1 "$KUBE_TOKEN_FILE")
contexts:
- name: standin
  context:
    cluster: standin
    user: standin
current-context: standin
EOF
    export KUBE_URL KUBE_PORT KUBE_CA KUBE_TOKEN_FILE KUBE_LOG KUBE_PID KUBE_NODES_DIR KUBECONFIG_FILE
}

# start_imds CLOUD [ARGS...]: the metadata stand-in of one cloud over plain HTTP.
start_imds() {
    local cloud=$1; shift
    _standin_launch "imds-$cloud" imds --cloud "$cloud" --fixtures "$TW_FIXTURES/imds" "$@" ||
        return 1
    IMDS_PORT=$_standin_port
    IMDS_URL="http://127.0.0.1:$IMDS_PORT"
    IMDS_LOG=$_standin_log
    IMDS_PID=$_standin_pid
    export IMDS_URL IMDS_PORT IMDS_LOG IMDS_PID
}

# standin_ctl URL METHOD PATH [CURL-ARGS...]: one control call; prints the body
# and fails on an HTTP error.
standin_ctl() {
    local url=$1 method=$2 path=$3; shift 3
    local tls=()
    case $url in https:*) tls=(--cacert "$TW_TMP/certs/ca.pem") ;; esac
    curl -sS --max-time 20 --fail-with-body "${tls[@]}" -X "$method" "$url$path" "$@"
}

standin_fault() {
    standin_ctl "$1" POST "/_control/fault?set=$2" >/dev/null
}

standin_stats() {
    standin_ctl "$1" GET /_control/stats
}

standin_requests() {
    standin_stats "$1" | jq -r .requests
}

# standin_stop PID: stops a stand-in with SIGTERM and returns its exit status.
standin_stop() {
    kill -TERM "$1" 2>/dev/null
    wait "$1"
}
