#!/usr/bin/env bash
# spread.sh - topowire-webhook's TLS listener spreads its connections over the worker threads:
# bursts of 64 keep-alive connections opened at once (a cold client pool) end up evenly on the two
# workers, where workers racing for one shared listen socket left most of them, or all, with one.
# Judged by where the connections are registered (each worker has its own epoll set, which
# /proc/PID/fdinfo lists), never by timing.
source "$(dirname "$0")/../lib.sh"

HOOK=$TW_BIN_DIR/topowire-webhook
CLIENT="/usr/bin/python3 $TW_ROOT/tests/integration/spread-client.py"
REVIEW=$TW_FIXTURES/admission/pod-create-spark-executor.json
N=64
ROUNDS=5

"$HOOK" certgen --service bench --namespace bench --out-dir "$TW_TMP" --extra-san 127.0.0.1 \
    --log-level warn
bg "$HOOK" serve --binding=false --threads 2 --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --tls-cert-file "$TW_TMP/tls.crt" --tls-key-file "$TW_TMP/tls.key" --log-format json \
    >"$TW_TMP/hook.log" 2>&1
HOOK_PID=$BG_PID
for _ in $(seq 400); do grep -q '"msg":"serving"' "$TW_TMP/hook.log" && break; sleep 0.05; done
PORT=$(grep '"msg":"serving"' "$TW_TMP/hook.log" | jq -r .port)

# per_worker: the number of established connections to PORT in each epoll set of the server
# that holds any, largest first ("40 24").
per_worker() {
    local hex inodes fd
    hex=$(printf '%04X' "$PORT")
    # Established (01) sockets whose local port is PORT: their inodes.
    inodes=" $(awk -v p=":$hex" '$2 ~ p"$" && $4 == "01" {printf "%s ", $10}' /proc/net/tcp /proc/net/tcp6) "
    for fd in $(find "/proc/$HOOK_PID/fd" -lname 'anon_inode:\[eventpoll\]' -printf '%f\n'); do
        awk '/^tfd:/ {print $2}' "/proc/$HOOK_PID/fdinfo/$fd" | while read -r t; do
            l=$(readlink "/proc/$HOOK_PID/fd/$t" 2>/dev/null) || continue
            case $l in socket:*) ;; *) continue ;; esac
            case $inodes in *" ${l//[!0-9]/} "*) echo x ;; esac
        done | wc -l
    done | awk '$1 > 0' | sort -rn | xargs
}

worst=0
for r in $(seq "$ROUNDS"); do
    mkfifo "$TW_TMP/in.$r"
    $CLIENT --port "$PORT" --ca "$TW_TMP/ca.crt" --body "$REVIEW" -n "$N" <"$TW_TMP/in.$r" \
        >"$TW_TMP/out.$r" 2>&1 &
    client=$!
    exec 7>"$TW_TMP/in.$r"
    for _ in $(seq 600); do grep -q '^open' "$TW_TMP/out.$r" && break; sleep 0.05; done
    expect_eq "burst $r: all $N connections answered" "open $N" "$(head -n1 "$TW_TMP/out.$r")"
    split=$(per_worker)
    echo "# burst $r: connections per worker: $split"
    set -- $split
    expect_eq "burst $r: every connection is registered with a worker" "$N" $(($1 + ${2:-0}))
    [ "$1" -gt "$worst" ] && worst=$1
    exec 7>&-
    wait "$client"
done
# An even spread is 32 each; libmicrohttpd places an added connection by its descriptor number,
# so a burst alternates. Before, one worker often held 41 to 64 of them.
check "no worker held more than 40 of $N connections in $ROUNDS bursts (most: $worst)" -- \
    test "$worst" -le 40
done_testing
