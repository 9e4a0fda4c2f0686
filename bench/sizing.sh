#!/usr/bin/env bash
# bench/sizing.sh - binding mode on a large cluster: the node cache with 100,000 nodes, beside the
# same measurements with 5,000 nodes in the same run. For each size: time from start to /readyz
# (the first LIST, 500 nodes a page) and the CPU the webhook and the API server stand-in spent on
# it, the cache's bytes, RSS and peak RSS, bindings/s over TLS with keep-alive (wrk at 8 and 64
# connections), a relabel storm of 10,000 watch events (every relabelled node's zone changed;
# how long until every binding sees the new zone, idle and while wrk posts bindings), and a
# full re-LIST after the watch expired (410 Gone), which holds the old and the new table at once.
# Peak RSS is read per phase (VmHWM, reset through /proc/PID/clear_refs between phases).
#
# Environment: BENCH_DURATION (seconds per wrk point, default 10), BENCH_SIZES (node counts,
# default "5000 100000"), BENCH_STORM (relabels in the storm, default 10000).
set -euo pipefail
source "$(dirname "$0")/../tests/lib.sh"
source "$TW_ROOT/tests/standin.sh"
DURATION=${BENCH_DURATION:-10}
SIZES=${BENCH_SIZES:-5000 100000}
STORM=${BENCH_STORM:-10000}
HOOK=$TW_ROOT/bin/topowire-webhook
ZONE_KEY=topology.kubernetes.io/zone
PATH=$PATH:/usr/sbin
for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (mk/deps.sh bench)" >&2; exit 1; }
done

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Peak RSS since the last reset_peak, then reset it (Linux: 5 > clear_refs resets VmHWM).
reset_peak() { echo 5 >"/proc/$1/clear_refs"; }
peak() { local p; p=$(kib "$1" VmHWM); reset_peak "$1"; echo "$p"; }
# CPU seconds (user + system) a process used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

"$HOOK" certgen --service bench --namespace bench --out-dir "$TW_TMP" --extra-san 127.0.0.1 --log-level warn
cat >"$TW_TMP/post.lua" <<LUA
local f = assert(io.open("$TW_TMP/binding.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
LUA
wrk_run() { # wrk_run URL CONNECTIONS SECONDS -> "rps p50 p99 requests errors"
    wrk -t2 -c"$2" -d"$3s" --latency -s "$TW_TMP/post.lua" "$1" |
        awk '/Requests\/sec/ {r=$2} /requests in/ {n=$1} /Non-2xx/ {bad=$NF} /Socket errors/ {sock=1}
             $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "%.0f %s %s %s %d\n", r, p50, p99, n, bad + sock}'
}

# storm ZONE: relabels the $STORM nodes of $TW_TMP/storm-names to a zone none has yet,
# from two clients (keep-alive), and waits until the webhook has applied every event and a
# binding to each of 100 nodes spread over the relabelled ones (the last included) carries the
# new zone. Sets STORM_SEND_MS (until the API server took the last change), STORM_MS (until
# the webhook applied the last event), STORM_OK (bindings that saw the new zone, of 100).
storm() {
    local zone=$1 ev0 i half t0 t1
    ev0=$(metric topowire_node_cache_events_total)
    half=$((STORM / 2))
    head -n "$half" "$TW_TMP/storm-names" | sed "s|.*|url = \"$KUBE_URL/_control/node/label?name=&\&key=$ZONE_KEY\&value=$zone\"\noutput = /dev/null|" >"$TW_TMP/storm-a.cfg"
    sed -n "$((half + 1)),${STORM}p" "$TW_TMP/storm-names" | sed "s|.*|url = \"$KUBE_URL/_control/node/label?name=&\&key=$ZONE_KEY\&value=$zone\"\noutput = /dev/null|" >"$TW_TMP/storm-b.cfg"
    t0=$(now_ms)
    curl -s --cacert "$KUBE_CA" -X POST -w '%{http_code}\n' -K "$TW_TMP/storm-a.cfg" >"$TW_TMP/storm-a.out" &
    local a=$!
    curl -s --cacert "$KUBE_CA" -X POST -w '%{http_code}\n' -K "$TW_TMP/storm-b.cfg" >"$TW_TMP/storm-b.out"
    wait "$a"
    STORM_SEND_MS=$(($(now_ms) - t0))
    local sent
    sent=$(cat "$TW_TMP/storm-a.out" "$TW_TMP/storm-b.out" | grep -c '^200$' || true)
    [ "$sent" -eq "$STORM" ] || { echo "bench: the API server took $sent of $STORM relabels" >&2; exit 1; }
    for i in $(seq 6000); do
        [ "$(metric topowire_node_cache_events_total)" -ge $((ev0 + STORM)) ] && break
        sleep 0.01
    done
    t1=$(now_ms)
    STORM_MS=$((t1 - t0))
    # Watch events arrive in resourceVersion order, so once the count is reached every change is
    # in the cache; bindings to 100 of the nodes (the last relabelled one among them) confirm it.
    : >"$TW_TMP/check.cfg"
    for i in $(seq 0 99); do
        local n
        n=$(sed -n "$((1 + (STORM - 1) * i / 99))p" "$TW_TMP/storm-names")
        jq -c --arg n "$n" '.request.object.target.name = $n' "$TW_FIXTURES/admission/binding-create.json" >"$TW_TMP/check-$i.json"
        [ "$i" -gt 0 ] && echo next >>"$TW_TMP/check.cfg"
        printf 'url = "https://127.0.0.1:%s/mutate/binding"\ncacert = "%s"\nsilent\ndata-binary = "@%s"\nheader = "Content-Type: application/json"\n' \
            "$PORT" "$TW_TMP/ca.crt" "$TW_TMP/check-$i.json" >>"$TW_TMP/check.cfg"
    done
    STORM_OK=$(curl -K "$TW_TMP/check.cfg" |
        jq -r --arg z "\"$zone\"" '.response.patch // "" | @base64d | contains($z)' | grep -c true || true)
}

declare -A ROW
for N in $SIZES; do
    start_kube
    standin_ctl "$KUBE_URL" POST "/_control/nodes/generate?count=$N&zones=3" >/dev/null
    # The storm's nodes: the first ones with a zone in name order. Only the fixture nodes can
    # lack one (the stand-in does not filter by label), so a page that many longer holds them.
    extra=$(find "$KUBE_NODES_DIR" -name '*.json' | wc -l)
    curl -s --cacert "$KUBE_CA" -H "Authorization: Bearer $(cat "$KUBE_TOKEN_FILE")" \
        -H 'Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1' \
        "$KUBE_URL/api/v1/nodes?limit=$((STORM + extra))" |
        jq -r --arg k "$ZONE_KEY" --argjson n "$STORM" \
            '[.items[] | select(.metadata.labels[$k]) | .metadata.name][:$n][]' >"$TW_TMP/storm-names"
    # Fewer nodes than events: the storm relabels each of them more than once.
    while [ "$(wc -l <"$TW_TMP/storm-names")" -lt "$STORM" ]; do
        cat "$TW_TMP/storm-names" "$TW_TMP/storm-names" | head -n "$STORM" >"$TW_TMP/storm-more"
        mv "$TW_TMP/storm-more" "$TW_TMP/storm-names"
    done
    NODE=$(tail -n1 "$TW_TMP/storm-names")
    jq --arg n "$NODE" '.request.object.target.name = $n' "$TW_FIXTURES/admission/binding-create.json" >"$TW_TMP/binding.json"

    PORT=$(free_port); MPORT=$(free_port)
    kcpu0=$(cpu_s "$KUBE_PID")
    t0=$(now_ms)
    bg "$HOOK" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
        --tls-cert-file "$TW_TMP/tls.crt" --tls-key-file "$TW_TMP/tls.key" --log-level warn \
        --kubeconfig "$KUBECONFIG_FILE"
    HOOK_PID=$BG_PID
    for _ in $(seq 12000); do curl -sf "http://127.0.0.1:$MPORT/readyz" >/dev/null && break; sleep 0.01; done
    SYNC_MS=$(($(now_ms) - t0))
    SYNC_HOOK_CPU=$(cpu_s "$HOOK_PID")
    SYNC_KUBE_CPU=$(sub "$(cpu_s "$KUBE_PID")" "$kcpu0")
    metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
    CACHED=$(metric topowire_node_cache_nodes)
    PAGES=$(metric topowire_node_cache_lists_total)
    CACHE_BYTES=$(metric topowire_node_cache_bytes)
    RSS_SYNC=$(kib "$HOOK_PID" VmRSS)
    PEAK_SYNC=$(peak "$HOOK_PID")

    curl -s --cacert "$TW_TMP/ca.crt" --data-binary @"$TW_TMP/binding.json" -H 'Content-Type: application/json' \
        "https://127.0.0.1:$PORT/mutate/binding" | jq -e '.response.patchType == "JSONPatch"' >/dev/null ||
        { echo "bench: no patch for the binding" >&2; exit 1; }
    wrk_run "https://127.0.0.1:$PORT/mutate/binding" 8 2 >/dev/null
    W8=$(wrk_run "https://127.0.0.1:$PORT/mutate/binding" 8 "$DURATION")
    W64=$(wrk_run "https://127.0.0.1:$PORT/mutate/binding" 64 "$DURATION")
    RSS_WRK=$(kib "$HOOK_PID" VmRSS)
    PEAK_WRK=$(peak "$HOOK_PID")

    storm us-east-1d
    IDLE="$STORM_SEND_MS $STORM_MS $STORM_OK"
    PEAK_STORM=$(peak "$HOOK_PID")
    # The same storm back to another zone while wrk keeps 64 connections busy with bindings.
    wrk_run "https://127.0.0.1:$PORT/mutate/binding" 64 "$DURATION" >"$TW_TMP/wrk-storm" &
    WRK_PID=$!
    sleep 1
    storm us-east-1e
    wait "$WRK_PID"
    LOADED="$STORM_SEND_MS $STORM_MS $STORM_OK"
    WSTORM=$(cat "$TW_TMP/wrk-storm")
    PEAK_STORM_LOAD=$(peak "$HOOK_PID")

    # The watch expires: a new LIST of every node into a second table, then the swap. Twice: the
    # second shows whether the memory the first one freed is used again.
    relist() {
        local w0 t0
        w0=$(metric topowire_node_cache_watches_total)
        t0=$(now_ms)
        standin_ctl "$KUBE_URL" POST /_control/expire >/dev/null
        for _ in $(seq 12000); do [ "$(metric topowire_node_cache_watches_total)" -gt "$w0" ] && break; sleep 0.01; done
        echo $(($(now_ms) - t0))
    }
    RELIST_MS=$(relist)
    PEAK_RELIST=$(peak "$HOOK_PID")
    RELIST_MS="$RELIST_MS ms, then $(relist)"
    RELISTS=$(metric topowire_node_cache_relists_total)
    PEAK_RELIST="$PEAK_RELIST $(peak "$HOOK_PID")"
    RSS_END=$(kib "$HOOK_PID" VmRSS)
    HWM=$(printf '%s\n' "$PEAK_SYNC" "$PEAK_WRK" "$PEAK_STORM" "$PEAK_STORM_LOAD" $PEAK_RELIST | sort -n | tail -1)
    ROW[$N]="$CACHED|$SYNC_MS|$PAGES|$SYNC_HOOK_CPU|$SYNC_KUBE_CPU|$CACHE_BYTES|$RSS_SYNC|$PEAK_SYNC|$W8|$W64|$RSS_WRK|$PEAK_WRK|$IDLE|$PEAK_STORM|$LOADED|$WSTORM|$PEAK_STORM_LOAD|$RELIST_MS|$RELISTS|$PEAK_RELIST|$RSS_END|$HWM"

    kill "$HOOK_PID"
    wait "$HOOK_PID" 2>/dev/null || true
    standin_stop "$KUBE_PID" || true
done

f() { echo "${ROW[$1]}" | awk -F'|' -v i="$2" '{print $i}'; }
w() { echo "$1" | awk -v i="$2" '{print $i}'; }
set -- $SIZES
echo "### Sizing: binding mode with $(for n in $SIZES; do printf '%s ' "$(f "$n" 1)"; done)nodes in the cache ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk, curl and the API server stand-in on the same cores)"
echo
printf '| measure |'; for n in $SIZES; do printf ' %s nodes |' "$(f "$n" 1)"; done; echo
printf '|---|'; for _ in $SIZES; do printf -- '---:|'; done; echo
row() { local label=$1; shift; printf '| %s |' "$label"; for n in $SIZES; do printf ' %s |' "$("$@" "$n")"; done; echo; }
c_sync() { echo "$(f "$1" 2) ms ($(f "$1" 3) pages)"; }
c_cpu() { echo "$(f "$1" 4) s / $(f "$1" 5) s"; }
c_bytes() { echo "$(mib $(($(f "$1" 6) / 1024))) MiB ($(($(f "$1" 6) / $(f "$1" 1))) B/node)"; }
c_rss() { echo "$(mib "$(f "$1" 7)") MiB"; }
c_psync() { echo "$(mib "$(f "$1" 8)") MiB"; }
c_w8() { local r; r=$(f "$1" 9); echo "$(w "$r" 1)/s, p50 $(w "$r" 2), p99 $(w "$r" 3)"; }
c_w64() { local r; r=$(f "$1" 10); echo "$(w "$r" 1)/s, p50 $(w "$r" 2), p99 $(w "$r" 3)"; }
c_errs() { echo "$(($(w "$(f "$1" 9)" 5) + $(w "$(f "$1" 10)" 5) + $(w "$(f "$1" 16)" 5)))"; }
c_pwrk() { echo "$(mib "$(f "$1" 12)") MiB"; }
c_idle() { local r; r=$(f "$1" 13); echo "$(w "$r" 2) ms (sent in $(w "$r" 1) ms); $(w "$r" 3)/100 bindings new zone"; }
c_pstorm() { echo "$(mib "$(f "$1" 14)") MiB"; }
c_load() { local r; r=$(f "$1" 15); echo "$(w "$r" 2) ms (sent in $(w "$r" 1) ms); $(w "$r" 3)/100 bindings new zone"; }
c_wstorm() { local r; r=$(f "$1" 16); echo "$(w "$r" 1)/s, p50 $(w "$r" 2), p99 $(w "$r" 3)"; }
c_pload() { echo "$(mib "$(f "$1" 17)") MiB"; }
c_relist() { echo "$(f "$1" 18) ms (relists: $(f "$1" 19))"; }
c_prelist() { local r; r=$(f "$1" 20); echo "$(mib "$(w "$r" 1)") MiB, then $(mib "$(w "$r" 2)") MiB"; }
c_end() { echo "$(mib "$(f "$1" 21)") MiB"; }
c_hwm() { echo "**$(mib "$(f "$1" 22)") MiB**"; }
row "start to /readyz (first LIST)" c_sync
row "CPU for the first LIST: webhook / API server stand-in" c_cpu
row "node cache (topowire_node_cache_bytes)" c_bytes
row "RSS after the sync" c_rss
row "peak RSS during the sync" c_psync
row "bindings, 8 connections" c_w8
row "bindings, 64 connections" c_w64
row "peak RSS during the wrk runs" c_pwrk
row "relabel storm, $STORM events, idle: until the cache has them all" c_idle
row "peak RSS during the idle storm" c_pstorm
row "relabel storm while wrk posts bindings at 64 connections" c_load
row "bindings during that storm (${DURATION} s, 64 connections)" c_wstorm
row "peak RSS during the storm under load" c_pload
row "watch expired (410): re-LIST of every node until the watch resumes, twice" c_relist
row "peak RSS during each re-LIST" c_prelist
row "RSS at the end" c_end
row "peak RSS over the whole run" c_hwm
row "non-2xx answers or socket errors in the wrk runs" c_errs
if [ $# -ge 2 ]; then
    a=$1 b=${!#}
    echo
    awk -v a="$(f "$a" 1)" -v b="$(f "$b" 1)" -v ca="$(f "$a" 6)" -v cb="$(f "$b" 6)" \
        -v ha="$(f "$a" 22)" -v hb="$(f "$b" 22)" 'BEGIN {
        printf "Per 1,000 nodes (between the two sizes): node cache %.0f KiB, peak RSS %.0f KiB.\n",
            (cb - ca) / 1024 / (b - a) * 1000, (hb - ha) / (b - a) * 1000 }'
fi
