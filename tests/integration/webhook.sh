#!/usr/bin/env bash
# webhook.sh - the real topowire-webhook over TLS with certgen certificates: reviews of every
# fixture (patches applied with kubectl), every refusal, slow and stalled clients, a connection
# limit, certificate rotation under a keep-alive client, metrics, SIGTERM with a request in
# flight, and (plain build) a valgrind leak check.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../standin.sh"

HOOK=$TW_BIN_DIR/topowire-webhook
CLIENT="/usr/bin/python3 $TW_ROOT/tests/integration/webhook-client.py"
FIX=$TW_FIXTURES/admission
SVC=topowire-webhook
NS=topowire-system
NAME=$SVC.$NS.svc
CERTS=$TW_TMP/certs
mkdir -p "$CERTS"

# start_hook (tests/lib.sh) gives every start these; URL is set after each start.
HOOK_ARGS=(--binding=false --tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key")

# post [CURL ARGS...]: POST to /mutate/pods over TLS, verifying the server as $NAME.
post() {
    curl -sS --max-time 20 --cacert "$CERTS/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" \
        -H 'Content-Type: application/json' "$@" "https://$NAME:$PORT/mutate/pods"
}

code_of() { # code_of CURL ARGS...: prints the HTTP status of a request to the TLS listener
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CERTS/ca.crt" \
        --resolve "$NAME:$PORT:127.0.0.1" "$@"
}

served_serial() {
    openssl s_client -connect "127.0.0.1:$PORT" -servername "$NAME" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}

file_serial() { openssl x509 -noout -serial -in "$1" | cut -d= -f2; }

# ---- certgen -------------------------------------------------------------
"$HOOK" certgen --service $SVC --namespace $NS --out-dir "$CERTS" 2>/dev/null
tap $? "certgen writes the CA and serving certificate"
expect_eq "key files are 0600, certificates 0644" "600 644 600 644" \
    "$(stat -c %a "$CERTS/ca.key" "$CERTS/ca.crt" "$CERTS/tls.key" "$CERTS/tls.crt" | xargs)"
openssl verify -CAfile "$CERTS/ca.crt" -verify_hostname "$NAME.cluster.local" \
    -purpose sslserver "$CERTS/tls.crt" >/dev/null 2>&1
tap $? "the serving certificate verifies against the CA for $NAME.cluster.local"
"$HOOK" certgen --service 'bad_name' --out-dir "$CERTS/none" >/dev/null 2>&1
expect_eq "certgen refuses an invalid service name (exit 2)" 2 $?
mkdir -p "$TW_TMP/pw"
env -u KUBERNETES_SERVICE_HOST -u KUBECONFIG "$HOOK" certgen --out-dir "$TW_TMP/pw" \
    --patch-webhook topowire --log-format json >"$TW_TMP/pw.log" 2>&1
expect_eq "--patch-webhook outside a cluster fails (exit 1), files written" "1 yes" \
    "$? $(test -s "$TW_TMP/pw/tls.crt" && echo yes)"
check "... saying it is not in a cluster" -- grep -q 'not in a cluster' "$TW_TMP/pw.log"
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=1 "$HOOK" certgen --out-dir "$TW_TMP/pw" \
    --patch-webhook topowire --log-format json >"$TW_TMP/pw.log" 2>&1
expect_eq "--patch-webhook with an unreachable API server fails (exit 1)" 1 $?

# ---- certgen --patch-webhook against the kube-apiserver stand-in ------------
cat >"$TW_TMP/mwc.json" <<'JSON'
{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration",
 "metadata":{"name":"topowire"},
 "webhooks":[
  {"name":"inject.topowire.io","admissionReviewVersions":["v1"],"sideEffects":"None",
   "failurePolicy":"Ignore","clientConfig":{"service":{"name":"topowire-webhook",
   "namespace":"topowire-system","path":"/mutate/pods"}}},
  {"name":"binding.topowire.io","admissionReviewVersions":["v1"],"sideEffects":"None",
   "failurePolicy":"Ignore","clientConfig":{"service":{"name":"topowire-webhook",
   "namespace":"topowire-system","path":"/mutate/binding"},"caBundle":"b2xkCg=="}}]}
JSON
if start_kube --webhook-config "$TW_TMP/mwc.json"; then
    PW=$TW_TMP/pw-kube
    mkdir -p "$PW"
    # patch_webhook NAME [ARGS...]: certgen --patch-webhook with the in-cluster config.
    patch_webhook() {
        local name=$1; shift
        KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KUBE_PORT "$HOOK" certgen \
            --service $SVC --namespace $NS --out-dir "$PW" --patch-webhook "$name" \
            --token-file "$KUBE_TOKEN_FILE" --ca-file "$KUBE_CA" --log-format json "$@" \
            >"$TW_TMP/pw-kube.log" 2>&1
    }
    mwc() {
        curl -sS --cacert "$KUBE_CA" -H "Authorization: Bearer $(cat "$KUBE_TOKEN_FILE")" \
            "$KUBE_URL/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/topowire"
    }
    patches() { grep -c ' PATCH ' "$KUBE_LOG"; }
    patch_webhook topowire
    tap $? "--patch-webhook sets caBundle through the API (in-cluster config)"
    expect_eq "every webhook's caBundle is the new CA" "yes yes" \
        "$(mwc | jq -r '.webhooks[].clientConfig.caBundle' | while read -r b; do
            [ "$(printf %s "$b" | base64 -d)" = "$(cat "$PW/ca.crt")" ] && echo yes || echo no
        done | xargs)"
    expect_eq "... and nothing else in the webhooks changed" "/mutate/pods /mutate/binding Ignore" \
        "$(mwc | jq -r '[.webhooks[].clientConfig.service.path] + [.webhooks[0].failurePolicy] | join(" ")')"
    mwc | jq -r '.webhooks[0].clientConfig.caBundle' | base64 -d >"$TW_TMP/bundle.pem"
    openssl verify -CAfile "$TW_TMP/bundle.pem" -verify_hostname "$NAME" "$PW/tls.crt" >/dev/null 2>&1
    tap $? "the stored caBundle verifies the new serving certificate for $NAME"
    before=$(patches)
    patch_webhook topowire --ca-cert-file "$PW/ca.crt" --ca-key-file "$PW/ca.key"
    expect_eq "re-issuing from the same CA leaves the configuration alone (no PATCH)" \
        "0 $before" "$? $(patches)"
    standin_fault "$KUBE_URL" "flaky:2:503"
    patch_webhook topowire
    tap $? "--patch-webhook retries through two 503s"
    standin_fault "$KUBE_URL" "403"
    patch_webhook topowire
    expect_eq "a 403 fails with exit 1" 1 $?
    check "... and the log says Forbidden" -- grep -q Forbidden "$TW_TMP/pw-kube.log"
    standin_fault "$KUBE_URL" ""
    patch_webhook nope
    expect_eq "an unknown configuration fails with exit 1" 1 $?
    check "... and the log says not found" -- grep -qi 'not found' "$TW_TMP/pw-kube.log"
    standin_stop "$KUBE_PID"
    expect_eq "the stand-in stops cleanly" 0 $?
else
    tap 1 "the kube stand-in starts"
fi

# ---- serving -------------------------------------------------------------
start_hook "$TW_TMP/hook.log" --connection-timeout 2 --request-timeout 3 --shutdown-grace 20 \
    --init-image registry.example/topowire-init:test
tap $? "serve starts with the certgen certificate" || { done_testing; exit 1; }
URL=https://$NAME:$PORT/mutate/pods
expect_eq "/healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")"
expect_eq "/readyz once the certificate is loaded" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")"

injected=0
for f in "$FIX"/*.json; do
    base=$(basename "$f" .json)
    resp=$(post --data-binary @"$f")
    expect_eq "$base: uid echoed, allowed" "$(jq -r .request.uid "$f") true" \
        "$(jq -r '"\(.response.uid) \(.response.allowed)"' <<<"$resp")"
    expect_eq "$base: answered in admission.k8s.io/v1" "admission.k8s.io/v1 AdmissionReview" \
        "$(jq -r '"\(.apiVersion) \(.kind)"' <<<"$resp")"
    if [ "$(jq -r .request.kind.kind "$f")" = Binding ]; then
        expect_eq "$base: /mutate/pods leaves a Binding alone (no patch)" "null null" \
            "$(jq -r '"\(.response.patch) \(.response.patchType)"' <<<"$resp")"
        continue
    fi
    injected=$((injected + 1))
    expect_eq "$base: JSONPatch" JSONPatch "$(jq -r .response.patchType <<<"$resp")"
    jq -r .response.patch <<<"$resp" | base64 -d >"$TW_TMP/$base.patch"
    jq .request.object "$f" >"$TW_TMP/$base.pod.json"
    kubectl patch --local --type=json -f "$TW_TMP/$base.pod.json" \
        -p "$(cat "$TW_TMP/$base.patch")" -o json >"$TW_TMP/$base.patched.json" 2>"$TW_TMP/kubectl.err"
    tap $? "$base: kubectl applies the patch"
    expect_eq "$base: topowire-init first, image from --init-image, app containers mount it" \
        "topowire-init registry.example/topowire-init:test true" \
        "$(jq -r '"\(.spec.initContainers[0].name) \(.spec.initContainers[0].image) \([.spec.containers[].volumeMounts[] | select(.name=="topowire")] | length == (input | .spec.containers | length))"' \
            "$TW_TMP/$base.patched.json" "$TW_TMP/$base.pod.json")"
    # The patched pod admitted again (reinvocation) gets no patch.
    jq --slurpfile p "$TW_TMP/$base.patched.json" '.request.object = $p[0]' "$f" >"$TW_TMP/again.json"
    expect_eq "$base: re-admitting the patched pod changes nothing" "true null" \
        "$(post --data-binary @"$TW_TMP/again.json" | jq -r '"\(.response.allowed) \(.response.patch)"')"
done

jq '.apiVersion = "admission.k8s.io/v1beta1"' "$FIX/pod-create-spark-executor.json" >"$TW_TMP/beta.json"
expect_eq "a v1beta1 review is answered in v1beta1" "admission.k8s.io/v1beta1 JSONPatch" \
    "$(post --data-binary @"$TW_TMP/beta.json" | jq -r '"\(.apiVersion) \(.response.patchType)"')"
injected=$((injected + 1))
jq '.request.object.metadata.annotations["topowire.io/rack"] = "moon"' \
    "$FIX/pod-create-spark-executor.json" >"$TW_TMP/warn.json"
expect_eq "an invalid annotation is a warning, not a denial" "true 1" \
    "$(post --data-binary @"$TW_TMP/warn.json" | jq -r '"\(.response.allowed) \(.response.warnings | length)"')"
injected=$((injected + 1))

# ---- refusals ------------------------------------------------------------
expect_eq "GET is 405" 405 "$(code_of "$URL")"
expect_eq "405 says Allow: POST" "POST" \
    "$(curl -s -D - -o /dev/null --cacert "$CERTS/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" "$URL" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="allow"{print $2}')"
expect_eq "text/plain is 415" 415 "$(code_of -H 'Content-Type: text/plain' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")"
expect_eq "no content type is 415" 415 "$(code_of -H 'Content-Type:' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")"
head -c $((3 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$TW_TMP/big.json"
expect_eq "a body over 3 MiB is 413 (Content-Length)" 413 \
    "$(code_of -H 'Content-Type: application/json' --data-binary @"$TW_TMP/big.json" "$URL")"
expect_eq "a body over 3 MiB is 413 (chunked)" 413 \
    "$(code_of -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$TW_TMP/big.json" "$URL")"
/usr/bin/python3 -c 'import sys; n = (3 * 1024 * 1024 - 100) // 2; sys.stdout.write("{\"a\":[" + ",".join(["1"] * n) + "]}")' >"$TW_TMP/many.json"
expect_eq "a body of three million tiny JSON values is 413, memory bounded" 413 \
    "$(code_of -H 'Content-Type: application/json' --data-binary @"$TW_TMP/many.json" "$URL")"
head -c $((2500 * 1024)) /dev/zero | tr '\0' x >"$TW_TMP/blob"
jq --rawfile big "$TW_TMP/blob" '.request.object.metadata.annotations["example.com/blob"] = $big' \
    "$FIX/pod-create-spark-executor.json" >"$TW_TMP/bigpod.json"
expect_eq "a 2.5 MiB pod is still injected" "200 JSONPatch" \
    "$(post --data-binary @"$TW_TMP/bigpod.json" -w ' %{http_code}' -o "$TW_TMP/bigpod.out" | tr -d ' '; printf ' '; jq -r .response.patchType "$TW_TMP/bigpod.out")"
injected=$((injected + 1))
expect_eq "malformed JSON is 400" 400 "$(code_of -H 'Content-Type: application/json' -d '{"apiVersion":' "$URL")"
expect_eq "JSON that is not a review is 400" 400 \
    "$(code_of -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"Pod"}' "$URL")"
expect_eq "a review without request.uid is 400" 400 \
    "$(code_of -H 'Content-Type: application/json' --data-binary @<(jq 'del(.request.uid)' "$FIX/pod-create-dryrun.json") "$URL")"
expect_eq "an unknown path is 404" 404 "$(code_of -H 'Content-Type: application/json' -d '{}' "https://$NAME:$PORT/mutate/nodes")"
check "the server is still alive after the refusals" -- kill -0 "$HOOK_PID"

# ---- TLS versions ----------------------------------------------------------
echo | openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 >/dev/null 2>&1
expect_eq "TLS 1.1 is refused" 1 $?
echo | openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 >/dev/null 2>&1
expect_eq "TLS 1.2 is accepted" 0 $?
echo | openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 >/dev/null 2>&1
expect_eq "TLS 1.3 is accepted" 0 $?

# ---- slow and stalled clients --------------------------------------------
$CLIENT silent --port "$PORT" --limit 15 >"$TW_TMP/silent.out" 2>&1 &
silent_pid=$!
$CLIENT trickle --port "$PORT" --ca "$CERTS/ca.crt" --name "$NAME" --limit 20 >"$TW_TMP/trickle.out" 2>&1 &
trickle_pid=$!
sleep 0.5
expect_eq "while clients stall, reviews still succeed" 200 \
    "$(code_of -H 'Content-Type: application/json' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")"
injected=$((injected + 1))
wait $silent_pid
s=$(awk '/closed after/{print int($3)}' "$TW_TMP/silent.out")
check "a silent connection is closed after the connection timeout ($(tail -1 "$TW_TMP/silent.out"))" -- \
    test -n "$s" -a "${s:-99}" -le 6
wait $trickle_pid
t=$(awk '/closed after/{print int($3)}' "$TW_TMP/trickle.out")
check "a trickling body is cut off by the request timeout ($(tail -1 "$TW_TMP/trickle.out"))" -- \
    test -n "$t" -a "${t:-99}" -ge 2 -a "${t:-99}" -le 8

# ---- metrics -------------------------------------------------------------
expect_eq "metrics: injected reviews counted" "$injected" "$(metric 'topowire_webhook_reviews_total{route="pods",outcome="injected"}')"
expect_eq "metrics: patches counted" "$injected" "$(metric 'topowire_webhook_patches_total{route="pods"}')"
expect_eq "metrics: re-admissions counted as already injected" 4 \
    "$(metric 'topowire_webhook_reviews_total{route="pods",outcome="already_injected"}')"
expect_eq "metrics: the Binding counted as not applicable" 1 \
    "$(metric 'topowire_webhook_reviews_total{route="pods",outcome="not_applicable"}')"
expect_eq "metrics: errors by reason" "2 1 2 3 1 2" \
    "$(for r in method_not_allowed not_found unsupported_media_type too_large invalid_json not_a_review; do
        metric "topowire_webhook_errors_total{reason=\"$r\"}"; done | xargs)"
check "metrics: a timeout was counted" -- test "$(metric 'topowire_webhook_errors_total{reason="timeout"}')" -ge 1
expect_eq "metrics: nothing in flight" 0 "$(metric topowire_webhook_inflight_requests)"
expect_eq "metrics: latency histogram count equals reviews" \
    "$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '/^topowire_webhook_reviews_total/{s+=$2} END{print s}')" \
    "$(metric 'topowire_webhook_review_duration_seconds_count{route="pods"}')"

# ---- certificate rotation under a keep-alive client -----------------------
old_serial=$(served_serial)
expect_eq "the served certificate is certgen's" "$(file_serial "$CERTS/tls.crt")" "$old_serial"
rm -f "$TW_TMP/go"
$CLIENT keepalive --port "$PORT" --ca "$CERTS/ca.crt" --name "$NAME" \
    --body "$FIX/pod-create-dryrun.json" --go "$TW_TMP/go" --count 3 >"$TW_TMP/ka.out" 2>&1 &
ka_pid=$!
for _ in $(seq 100); do grep -q '^waiting' "$TW_TMP/ka.out" 2>/dev/null && break; sleep 0.1; done
"$HOOK" certgen --service $SVC --namespace $NS --out-dir "$CERTS" \
    --ca-cert-file "$CERTS/ca.crt" --ca-key-file "$CERTS/ca.key" >/dev/null 2>&1
new_file_serial=$(file_serial "$CERTS/tls.crt")
for _ in $(seq 60); do
    [ "$(metric 'topowire_webhook_certificate_reloads_total{result="success"}')" = 1 ] && break
    sleep 0.1
done
expect_eq "the rotated files are reloaded once" 1 "$(metric 'topowire_webhook_certificate_reloads_total{result="success"}')"
expect_eq "new connections get the new certificate without a restart" "$new_file_serial" "$(served_serial)"
check "... and it differs from the old one" -- test "$new_file_serial" != "$old_serial"
touch "$TW_TMP/go"
wait $ka_pid
tap $? "the keep-alive client's connection kept working across the rotation"
expect_eq "... on the same TLS session (old certificate), three 200s" \
    "200 $old_serial 200 $old_serial 200 $old_serial" \
    "$(awk '/^response/{sub("status=","",$3); sub("serial=","",$4); print $3, $4}' "$TW_TMP/ka.out" | xargs)"
cp "$CERTS/tls.crt" "$TW_TMP/good.crt"
echo "not a certificate" >"$CERTS/tls.crt.tmp" && mv "$CERTS/tls.crt.tmp" "$CERTS/tls.crt"
for _ in $(seq 60); do
    [ "$(metric 'topowire_webhook_certificate_reloads_total{result="failure"}')" = 1 ] && break
    sleep 0.1
done
expect_eq "a broken certificate file is a failed reload" 1 "$(metric 'topowire_webhook_certificate_reloads_total{result="failure"}')"
expect_eq "... and the certificate in use stays" "$new_file_serial" "$(served_serial)"
expect_eq "... and reviews still succeed" 200 \
    "$(code_of -H 'Content-Type: application/json' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")"
cp "$TW_TMP/good.crt" "$CERTS/tls.crt"

# ---- SIGTERM with a request in flight --------------------------------------
rm -f "$TW_TMP/go"
$CLIENT halfway --port "$PORT" --ca "$CERTS/ca.crt" --name "$NAME" \
    --body "$FIX/pod-create-spark-executor.json" --go "$TW_TMP/go" >"$TW_TMP/half.out" 2>&1 &
half_pid=$!
for _ in $(seq 100); do grep -q '^sent half' "$TW_TMP/half.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
expect_eq "one request in flight" 1 "$(metric topowire_webhook_inflight_requests)"
kill -TERM "$HOOK_PID"
for _ in $(seq 50); do grep -q 'no longer accepting' "$TW_TMP/hook.log" && break; sleep 0.1; done
expect_eq "draining: /readyz answers 503" 503 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")"
expect_eq "draining: new connections are refused" 000 \
    "$(code_of --connect-timeout 2 -H 'Content-Type: application/json' -d '{}' "$URL")"
check "draining: the server waits for the request in flight" -- kill -0 "$HOOK_PID"
touch "$TW_TMP/go"
wait $half_pid
expect_eq "the in-flight request is answered, with Connection: close" \
    "response status=200 connection=close" "$(grep '^response' "$TW_TMP/half.out" | sed 's/ bytes=[0-9]*//')"
wait "$HOOK_PID"
expect_eq "SIGTERM: exit 0" 0 $?

# ---- a connection limit cannot be exhausted for good ------------------------
start_hook "$TW_TMP/limit.log" --max-connections 3 --connection-timeout 2 --threads 1
tap $? "serve starts with --max-connections 3"
URL=https://$NAME:$PORT/mutate/pods
pids=()
for i in 1 2 3; do
    $CLIENT silent --port "$PORT" --limit 15 >"$TW_TMP/s$i.out" 2>&1 &
    pids+=($!)
done
sleep 0.5
expect_eq "with every slot held by silent clients a new client is still served" 200 \
    "$(code_of --max-time 2 -H 'Content-Type: application/json' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")"
wait "${pids[@]}"
check "... one silent client made room for it at once (not at the 2 s timeout)" -- \
    grep -qE 'closed after [01]\.' "$TW_TMP/s1.out" "$TW_TMP/s2.out" "$TW_TMP/s3.out"
expect_eq "once they time out, reviews are served again" 200 \
    "$(code_of -H 'Content-Type: application/json' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")"
stop_hook
expect_eq "SIGTERM on an idle server: exit 0" 0 $?

# ---- usage errors ----------------------------------------------------------
"$HOOK" serve --binding=false --rack moon --tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" >/dev/null 2>&1
expect_eq "an invalid --rack is a usage error (exit 2)" 2 $?
"$HOOK" serve --binding=false --listen 127.0.0.1:0 --metrics-listen "" --tls-cert-file "$TW_TMP/none.crt" \
    --tls-key-file "$CERTS/tls.key" >/dev/null 2>&1
expect_eq "a missing certificate file fails to start (exit 1)" 1 $?
"$HOOK" serve --binding=false --listen 127.0.0.1:0 --metrics-listen "" --tls-cert-file "$CERTS/ca.crt" \
    --tls-key-file "$CERTS/tls.key" >/dev/null 2>&1
expect_eq "a key that does not match the certificate fails to start" 1 $?
"$HOOK" frobnicate >/dev/null 2>&1
expect_eq "an unknown command is a usage error" 2 $?
expect_eq "version" "topowire-webhook $(cat "$TW_ROOT/VERSION")" "$("$HOOK" version)"

# ---- start-up failures and libcurl's global set-up -----------------------------
cat >"$TW_TMP/nowhere.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority: "$CERTS/ca.crt"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
YAML
bg /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$TW_TMP/taken.port"
taker=$BG_PID
wait_file "$TW_TMP/taken.port" 5
taken=$(cat "$TW_TMP/taken.port")
"$HOOK" serve --listen "127.0.0.1:$taken" --metrics-listen "" --kubeconfig "$TW_TMP/nowhere.kubeconfig" \
    --tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" --log-format json \
    >"$TW_TMP/taken.log" 2>&1
expect_eq "binding mode on a port already taken: exit 1 (not an abort)" 1 $?
check "... saying it cannot listen there" -- \
    grep -q "\"msg\":\"cannot start\".*cannot listen on 127.0.0.1:$taken" "$TW_TMP/taken.log"
kill "$taker" 2>/dev/null
if [ "$TW_VARIANT" = plain ] && cc -std=c11 -D_GNU_SOURCE -shared -fPIC -o "$TW_TMP/probe.so" \
    "$TW_ROOT/tests/integration/curl-init-probe.c" -ldl 2>"$TW_TMP/probe.err"; then
    HOOK_PREFIX=(env LD_PRELOAD="$TW_TMP/probe.so" TW_CURL_INIT_PROBE="$TW_TMP/probe.out")
    start_hook "$TW_TMP/probe.log" --metrics-listen ""
    HOOK_PREFIX=()
    stop_hook
    expect_eq "serve calls curl_global_init once, before any thread starts" "threads=1" \
        "$(cat "$TW_TMP/probe.out" 2>/dev/null)"
fi

# ---- valgrind: no definite leak over a short run (plain build only) --------
if [ "$TW_VARIANT" = plain ] && command -v valgrind >/dev/null 2>&1; then
    HOOK_PREFIX=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1
        --log-file="$TW_TMP/vg.txt")
    start_hook "$TW_TMP/vg.log" --threads 2
    tap $? "valgrind: the server starts"
    URL=https://$NAME:$PORT/mutate/pods
    ok=0
    for f in "$FIX"/*.json; do
        [ "$(code_of -H 'Content-Type: application/json' --data-binary @"$f" "$URL")" = 200 ] || ok=1
    done
    code_of -H 'Content-Type: application/json' -d '{' "$URL" >/dev/null
    code_of "$URL" >/dev/null
    curl -s "http://127.0.0.1:$MPORT/metrics" >/dev/null
    "$HOOK" certgen --service $SVC --namespace $NS --out-dir "$CERTS" \
        --ca-cert-file "$CERTS/ca.crt" --ca-key-file "$CERTS/ca.key" >/dev/null 2>&1
    sleep 2.5
    [ "$(code_of -H 'Content-Type: application/json' --data-binary @"$FIX/pod-create-dryrun.json" "$URL")" = 200 ] || ok=1
    tap $ok "valgrind: reviews, refusals, metrics and a rotation served"
    stop_hook
    rc=$?
    expect_eq "valgrind: exit 0 with no definite leak or memory error" 0 $rc
    [ $rc -ne 0 ] && grep -E 'definitely|Invalid|uninitialised|ERROR SUMMARY' "$TW_TMP/vg.txt" | head -20 | sed 's/^/#   /'
fi

done_testing
