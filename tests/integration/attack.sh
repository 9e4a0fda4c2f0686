#!/usr/bin/env bash
# attack.sh - topowire-webhook under deliberate abuse from one client address (127.0.0.1) while a
# second one (127.0.0.2, the API server) sends real reviews and probes: stalled uploads, bodies that
# stop arriving, slow TLS handshakes and request heads holding every connection slot, a client at
# its per-address limit, and slow connections on the metrics port. Each attack is scaled to run a
# few seconds and judged by outcome: every review answered within 5 s (the webhook's
# timeoutSeconds), /healthz within 2 s (the kubelet's probe timeout), RSS under 96 MiB (3/4 of the
# Deployment's 128Mi; plain build only, the sanitizers' own memory would dwarf it).
source "$(dirname "$0")/../lib.sh"

ATTACK="/usr/bin/python3 $TW_ROOT/tests/integration/attack-client.py"
REVIEW=$TW_FIXTURES/admission/pod-create-dryrun.json
CERTS=$TW_TMP/certs
"$TW_ROOT/tests/certs.sh" "$CERTS" >/dev/null 2>&1
tap $? "test certificates made"

# start_hook (tests/lib.sh) gives every start these.
HOOK_ARGS=(--binding=false --tls-cert-file "$CERTS/server.pem" --tls-key-file "$CERTS/server-key.pem")

# reviews N: N reviews from 127.0.0.2, started a fifth of a second apart and running at once,
# each allowed 5 s; prints how many were answered 200 in time.
reviews() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 --interface 127.0.0.2 \
            --cacert "$CERTS/ca.pem" -H 'Content-Type: application/json' \
            --data-binary @"$REVIEW" "https://127.0.0.1:$PORT/mutate/pods" &
        sleep 0.2
    done | grep -c '^200$'
}

# probes N [SOURCE]: N /healthz probes (2 s each, as the kubelet's), 0.3 s apart and running at
# once; prints how many answered 200.
probes() {
    local n=$1 src=${2:-127.0.0.2} i
    for ((i = 0; i < n; i++)); do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 2 --interface "$src" \
            "http://127.0.0.1:$MPORT/healthz" &
        sleep 0.3
    done | grep -c '^200$'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

field() { sed -n "s/.*$1=\([-0-9.]*\).*/\1/p" "$2"; }

# ---- 1. stalled uploads: bodies sent but for their last byte, then silence -----------------
start_hook "$TW_TMP/bodies.log" --threads 2
tap $? "serve starts (defaults: --max-body-memory 16)"
peak=0
$ATTACK stall-bodies --port "$PORT" --ca "$CERTS/ca.pem" --count 40 --hold 8 >"$TW_TMP/bodies.out" 2>&1 &
apid=$!
sleep 2.5
ok=$(reviews 8)
for _ in 1 2 3 4; do
    r=$(rss_kib "$HOOK_PID")
    [ "${r:-0}" -gt "$peak" ] && peak=$r
    sleep 0.5
done
healthy=$(probes 3)
wait "$apid"
echo "# 40 stalled 3 MiB uploads: $(cat "$TW_TMP/bodies.out"); peak RSS ${peak} KiB; reviews ok $ok/8"
expect_eq "40 stalled 3 MiB uploads: 8 of 8 reviews from another client answered within 5 s" 8 "$ok"
expect_eq "... /healthz answers" 3 "$healthy"
if [ "$TW_VARIANT" = plain ]; then
    check "... RSS stays under 96 MiB (peak ${peak} KiB)" -- test "$peak" -lt $((96 * 1024))
fi
evicted=$(metric 'topowire_webhook_connections_closed_total{listener="webhook",reason="body_evicted"}')
refused=$(metric 'topowire_webhook_errors_total{reason="body_memory"}')
check "... uploads beyond --max-body-memory are closed and counted (evicted ${evicted:-?}, refused ${refused:-?})" -- \
    test $(( ${evicted:-0} + ${refused:-0} )) -gt 0
check "... the body memory gauge stays within the budget" -- \
    test "$(metric topowire_webhook_body_memory_bytes)" -le $((16 * 1024 * 1024 + 4 * 1024 * 1024))
stop_hook

# ---- 2. a body that stops arriving is cut at --request-timeout, data or not ---------------
start_hook "$TW_TMP/stall.log" --request-timeout 2 --connection-timeout 30
tap $? "serve starts with --request-timeout 2 --connection-timeout 30"
$ATTACK stall-bodies --port "$PORT" --ca "$CERTS/ca.pem" --count 1 --size 20000 --hold 8 \
    >"$TW_TMP/stall.out" 2>&1
echo "# one stalled body: $(cat "$TW_TMP/stall.out")"
first=$(field first_close "$TW_TMP/stall.out")
check "a body stalled after its first bytes is closed within 5 s (at ${first:-?} s), not at the 30 s idle timeout" -- \
    awk -v t="${first:--1}" 'BEGIN { exit !(t > 0 && t < 5) }'
check "... counted as body_timeout" -- test "$(metric 'topowire_webhook_connections_closed_total{listener="webhook",reason="body_timeout"}')" -ge 1
stop_hook

# ---- 3. slow TLS handshakes holding every slot ------------------------------------------------
start_hook "$TW_TMP/hello.log" --max-connections 64 --header-timeout 3 --threads 2
tap $? "serve starts with --max-connections 64 --header-timeout 3"
$ATTACK slow-hello --port "$PORT" --count 80 --interval 1 --hold 8 >"$TW_TMP/hello.out" 2>&1 &
apid=$!
sleep 1.5
ok=$(reviews 8)
wait "$apid"
echo "# 80 slow TLS handshakes on 64 slots: $(cat "$TW_TMP/hello.out"); reviews ok $ok/8"
expect_eq "80 slow TLS handshakes on 64 slots: 8 of 8 reviews answered within 5 s" 8 "$ok"
check "... slow handshakes are closed (evicted or past --header-timeout)" -- \
    test "$(field closed "$TW_TMP/hello.out")" -gt 0
stop_hook

# ---- 4. a request head trickled after the handshake: --header-timeout ----------------------
start_hook "$TW_TMP/head.log" --header-timeout 2 --connection-timeout 30
tap $? "serve starts with --header-timeout 2 --connection-timeout 30"
$ATTACK slow-head --port "$PORT" --ca "$CERTS/ca.pem" --count 1 --interval 0.5 --hold 8 \
    >"$TW_TMP/head.out" 2>&1
echo "# a trickled request head: $(cat "$TW_TMP/head.out")"
first=$(field first_close "$TW_TMP/head.out")
check "a request head trickled a byte every 0.5 s is closed within 4 s (at ${first:-?} s)" -- \
    awk -v t="${first:--1}" 'BEGIN { exit !(t > 0 && t < 4) }'
check "... counted as header_timeout" -- test "$(metric 'topowire_webhook_connections_closed_total{listener="webhook",reason="header_timeout"}')" -ge 1
stop_hook

# ---- 5. the per-address limit: the surplus fails fast, other addresses are served ---------
start_hook "$TW_TMP/peraddr.log" --max-connections-per-address 8 --request-timeout 30
tap $? "serve starts with --max-connections-per-address 8"
$ATTACK stall-bodies --port "$PORT" --ca "$CERTS/ca.pem" --count 10 --size 20000 --hold 3 \
    >"$TW_TMP/peraddr.out" 2>&1 &
apid=$!
sleep 1
ok=$(reviews 3)
wait "$apid"
echo "# 10 uploads from one address, limit 8: $(cat "$TW_TMP/peraddr.out")"
# Connections still in their TLS handshake are made room with, so which two go depends on timing.
expect_eq "10 held uploads from one address with a limit of 8: 2 turned away at once, 8 kept" \
    "2 8" "$(( $(field refused "$TW_TMP/peraddr.out") + $(field closed "$TW_TMP/peraddr.out") )) $(field open "$TW_TMP/peraddr.out")"
expect_eq "... reviews from another address are answered" 3 "$ok"
refused=$(metric 'topowire_webhook_connections_closed_total{listener="webhook",reason="refused_per_address"}')
evicted=$(metric 'topowire_webhook_connections_closed_total{listener="webhook",reason="evicted"}')
turned=$(( ${refused:-0} + ${evicted:-0} ))
check "... counted as refused_per_address (or evicted, when still in the TLS handshake): $turned" -- test "$turned" -ge 2
stop_hook

# ---- 6. slow connections on the metrics port never starve the probes ----------------------
start_hook "$TW_TMP/metrics.log"
tap $? "serve starts"
$ATTACK slow-http --port "$MPORT" --count 80 --interval 0.5 --hold 8 >"$TW_TMP/mhttp.out" 2>&1 &
apid=$!
sleep 1.5
ok=$(probes 10 127.0.0.1)
wait "$apid"
echo "# 80 slow connections on the metrics port: $(cat "$TW_TMP/mhttp.out"); probes ok $ok/10"
expect_eq "80 slow connections to the metrics port (from the probes' own address): 10 of 10 /healthz within 2 s" \
    10 "$ok"
stop_hook
expect_eq "SIGTERM after the attacks: exit 0" 0 $?

done_testing
