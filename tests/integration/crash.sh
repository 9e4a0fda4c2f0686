#!/usr/bin/env bash
# Crash safety: topowire-init is killed with SIGKILL at staggered points while
# it writes; every output file must always be absent, the complete old file or
# the complete new one, never a part.
source "$(dirname "$0")/../lib.sh"
INIT=$TW_BIN_DIR/topowire-init
RUNS=${TW_CRASH_RUNS:-300}
export NODE_NAME=ip-10-0-41-17.ec2.internal
out=$TW_TMP/out
files="topology.env rack.properties client.rack topology.json"

# The old and new versions of every file, from runs nobody killed.
"$INIT" --sources downward --podinfo-dir "$TW_FIXTURES/podinfo" --rack region --out-dir "$TW_TMP/old" 2>/dev/null
"$INIT" --sources downward --podinfo-dir "$TW_FIXTURES/podinfo" --rack zone --out-dir "$TW_TMP/new" 2>/dev/null
cmp -s "$TW_TMP/old/rack.properties" "$TW_TMP/new/rack.properties"
tap $((1 - $?)) "old and new files differ (so a mix would show)"

bad=0; killed=0; partial_report=""
for i in $(seq "$RUNS"); do
    rm -rf "$out"; mkdir -p "$out"
    # Half the runs start from the old files, half from an empty directory.
    [ $((i % 2)) -eq 0 ] && cp "$TW_TMP/old/"* "$out/"
    "$INIT" --sources downward --podinfo-dir "$TW_FIXTURES/podinfo" --rack zone --out-dir "$out" 2>/dev/null &
    pid=$!
    # Stagger the kill from 0 to ~12 ms after start.
    delay=$(printf '0.%03d' $((i % 13)))
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
    wait "$pid" 2>/dev/null
    for f in $files; do
        [ -e "$out/$f" ] || continue
        if cmp -s "$out/$f" "$TW_TMP/new/$f" || cmp -s "$out/$f" "$TW_TMP/old/$f"; then
            continue
        fi
        bad=$((bad + 1))
        partial_report="$partial_report run $i: $f ($(stat -c %s "$out/$f") bytes)"
    done
done
expect_eq "SIGKILL at $RUNS staggered points ($killed landed while running): no partial or mixed file" 0 "$bad"
[ -n "$partial_report" ] && echo "# $partial_report"
[ "$killed" -gt $((RUNS / 4)) ]; tap $? "enough kills landed mid-run to mean something ($killed of $RUNS)"
done_testing
