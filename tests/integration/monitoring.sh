#!/usr/bin/env bash
# monitoring.sh - manifests/monitoring builds offline with every kubectl we support and passes the
# API schemas; its ServiceMonitor finds the webhook's metrics port; its alerts pass promtool's
# checks and unit tests (tests/monitoring/alerts.test.yaml), each alert fires in a test and has a
# runbook section; and a webhook running in binding mode serves exactly the metrics that
# docs/metrics.md documents, every metric an alert names, and no other topowire_ name the docs use.
# The checkers are shown to catch each kind of mistake, naming the metric or field.
. "$(dirname "$0")/../lib.sh"
. "$TW_ROOT/tests/standin.sh"

PY=/usr/bin/python3
CHECK="$PY $TW_ROOT/tests/k8s-schema-check.py"
METRICS_CHECK="$PY $TW_ROOT/tests/monitoring/check-metrics.py"
HOOK=$TW_BIN_DIR/topowire-webhook
DIR=manifests/monitoring
MIN_MINOR=22
cd "$TW_ROOT" || exit 1

offline=""
unshare -n true 2>/dev/null && offline="unshare -n"

# expect_problem DESCRIPTION EXPECTED-LINE COMMAND...: the command exits 1 and prints
# EXPECTED-LINE (a fixed string) among its lines.
expect_problem() {
    local desc=$1 want=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 1 ] && grep -qF -- "$want" <<<"$out"; then
        tap 0 "$desc"
    else
        tap 1 "$desc"
        echo "#   exit status $rc; expected a line containing: $want"
        sed 's/^/#   got: /' <<<"$out"
    fi
}

# pyq FILE PYTHON: runs PYTHON with docs (the YAML documents of FILE) and find(kind) in scope.
pyq() {
    $PY - "$1" "$2" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
def find(kind):
    return next(d for d in docs if d.get("kind") == kind)
exec(sys.argv[2])
EOF
}

# --- the directory builds, alone and inside an overlay ------------------------------------

kubectl_minor() {
    "$1" version --client -o json 2>/dev/null | jq -r '.clientVersion.minor // "0"' | tr -dc '0-9'
}
canonical() {
    $PY -c 'import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
print(json.dumps(sorted(docs, key=lambda d: (d["kind"], d["metadata"]["name"])), sort_keys=True))' "$1"
}

BUILT=$TW_TMP/monitoring.yaml
primary=$(command -v kubectl)
primary_minor=$(kubectl_minor "$primary")
if [ "${primary_minor:-0}" -lt "$MIN_MINOR" ]; then
    echo "# kubectl on PATH: $primary (1.${primary_minor:-?}); the manifest checks need 1.$MIN_MINOR+"
    tap 0 "kubectl kustomize $DIR # SKIP the kubectl on PATH is older than 1.$MIN_MINOR and mk/kubectl.sh could not fetch the pinned one"
    BUILT=""
else
    $offline kubectl kustomize "$DIR" >"$BUILT" 2>"$TW_TMP/build.err"
    [ $? -eq 0 ] && [ -s "$BUILT" ] && [ ! -s "$TW_TMP/build.err" ]
    tap $? "kubectl 1.$primary_minor kustomize $DIR builds offline, without a warning"
    sed 's/^/#   /' "$TW_TMP/build.err"
    old=$TW_ROOT/build/tools/kubectl-1.22.0/kubectl
    if [ -x "$old" ]; then
        $offline "$old" kustomize "$DIR" >"$TW_TMP/old.yaml" 2>"$TW_TMP/old.err"
        [ $? -eq 0 ] && [ ! -s "$TW_TMP/old.err" ] && [ "$(canonical "$BUILT")" = "$(canonical "$TW_TMP/old.yaml")" ]
        tap $? "kubectl 1.22 builds $DIR silently, the same objects as 1.$primary_minor"
        sed 's/^/#   /' "$TW_TMP/old.err"
    else
        tap 0 "kubectl 1.22 builds $DIR # SKIP not fetched (mk/kubectl.sh: linux/amd64 and npm only)"
    fi
fi

if [ -n "$BUILT" ]; then
    expect_eq "$DIR holds a ServiceMonitor and a PrometheusRule, in topowire-system" \
        "PrometheusRule/topowire-system/topowire-webhook ServiceMonitor/topowire-system/topowire-webhook" \
        "$(pyq "$BUILT" 'print(" ".join(sorted("/".join((d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])) for d in docs)))')"
    msg=$($CHECK --label "$DIR" "$BUILT" 2>&1)
    tap $? "every object of $DIR passes the API schemas (Prometheus Operator CRDs)"
    [ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
    pyq "$BUILT" 'find("ServiceMonitor")["spec"]["endpoints"][0]["paht"] = "/metrics"
yaml.safe_dump_all(docs, open(sys.argv[1] + ".bad", "w"))'
    expect_problem "the schema check catches a misspelt ServiceMonitor field, naming it" \
        "spec.endpoints[0].paht: unknown field (did you mean \"path\"?)" \
        $CHECK --label bad "$BUILT.bad"

    # The ServiceMonitor must find the base's Service and its metrics port.
    $offline kubectl kustomize manifests/base >"$TW_TMP/base.yaml" 2>/dev/null
    expect_eq "the ServiceMonitor selects the webhook Service, in its namespace, by its port named metrics" \
        "True True True" \
        "$($PY - "$TW_TMP/base.yaml" "$BUILT" <<'EOF'
import sys, yaml
load = lambda f: [d for d in yaml.safe_load_all(open(f)) if d is not None]
svc = next(d for d in load(sys.argv[1]) if d["kind"] == "Service")
sm = next(d for d in load(sys.argv[2]) if d["kind"] == "ServiceMonitor")
sel = sm["spec"]["selector"]["matchLabels"]
print(all(svc["metadata"]["labels"].get(k) == v for k, v in sel.items()),
      svc["metadata"]["namespace"] in sm["spec"]["namespaceSelector"]["matchNames"],
      sm["spec"]["endpoints"][0]["port"] in [p["name"] for p in svc["spec"]["ports"]])
EOF
)"
    expect_eq "the Service's metrics port leads to the container's metrics port, where the webhook serves /metrics" \
        "metrics --metrics-listen=:9090 9090" \
        "$(pyq "$TW_TMP/base.yaml" '
svc = find("Service"); c = find("Deployment")["spec"]["template"]["spec"]["containers"][0]
tp = [p["targetPort"] for p in svc["spec"]["ports"] if p["name"] == "metrics"][0]
print(tp, [a for a in c["args"] if a.startswith("--metrics-listen")][0], [p["containerPort"] for p in c["ports"] if p["name"] == tp][0])')"
    expect_eq "the base's NetworkPolicy admits scrapes of that port from the namespace monitoring (docs/deploy.md)" \
        "monitoring" \
        "$(pyq "$TW_TMP/base.yaml" '
np = find("NetworkPolicy")
print(",".join(f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for r in np["spec"]["ingress"]
      if any(p["port"] == "metrics" for p in r["ports"]) for f in r["from"]))')"

    # An overlay of the user's can list the directory beside one of ours.
    mkdir -p "$TW_TMP/overlay"
    rel=$(realpath --relative-to="$TW_TMP/overlay" "$TW_ROOT/manifests")
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s/overlays/cert-manager\n  - %s/monitoring\n' \
        "$rel" "$rel" >"$TW_TMP/overlay/kustomization.yaml"
    $offline kubectl kustomize "$TW_TMP/overlay" >"$TW_TMP/overlay.yaml" 2>"$TW_TMP/overlay.err"
    [ $? -eq 0 ] && grep -q '^kind: ServiceMonitor' "$TW_TMP/overlay.yaml" && grep -q '^kind: Deployment' "$TW_TMP/overlay.yaml"
    tap $? "an overlay that lists overlays/cert-manager and monitoring builds both (docs/deploy.md)"
    sed 's/^/#   /' "$TW_TMP/overlay.err"
    # docs/deploy.md's patch for another Helm release name relabels both objects.
    mkdir -p "$TW_TMP/release"
    rel=$(realpath --relative-to="$TW_TMP/release" "$TW_ROOT/$DIR")
    {
        printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\n' "$rel"
        $PY -c 'import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```yaml\n(.*?)```", text[text.index("## Monitoring"):], re.S)
print(next(b for b in blocks if "/metadata/labels/release" in b), end="")' docs/deploy.md
    } >"$TW_TMP/release/kustomization.yaml"
    $offline kubectl kustomize "$TW_TMP/release" >"$TW_TMP/release.yaml" 2>"$TW_TMP/release.err"
    expect_eq "docs/deploy.md's patch sets another release label on the ServiceMonitor and the PrometheusRule" \
        "PrometheusRule=monitoring ServiceMonitor=monitoring" \
        "$(pyq "$TW_TMP/release.yaml" 'print(" ".join(sorted(d["kind"] + "=" + d["metadata"]["labels"]["release"] for d in docs)))')"
    sed 's/^/#   /' "$TW_TMP/release.err"
fi

# --- the alerts: promtool ----------------------------------------------------------------------

PROM=$TW_TMP/prom
mkdir -p "$PROM"
RULES=$PROM/topowire-rules.yaml
cp tests/monitoring/alerts.test.yaml "$PROM/"
# The PrometheusRule's spec is a Prometheus rule file. Without a kubectl to build with, the file
# as written (the directory adds only labels).
$PY -c 'import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "PrometheusRule"]
yaml.safe_dump(docs[0]["spec"], open(sys.argv[2], "w"), sort_keys=False)' "${BUILT:-$DIR/prometheusrule.yaml}" "$RULES"

if ! command -v promtool >/dev/null 2>&1; then
    tap 1 "promtool is installed (mk/deps.sh test installs Debian's prometheus package)"
    done_testing
    exit
fi
echo "# $(promtool --version 2>&1 | head -1)"
out=$(promtool check rules --lint=all --lint-fatal "$RULES" 2>&1)
rc=$?
tap $rc "promtool check rules --lint=all passes the PrometheusRule's groups"
[ $rc -ne 0 ] && sed 's/^/#   /' <<<"$out"
out=$(cd "$PROM" && promtool test rules alerts.test.yaml 2>&1)
tap $? "promtool test rules: every case of tests/monitoring/alerts.test.yaml passes"
grep -q SUCCESS <<<"$out" || sed 's/^/#   /' <<<"$out"

ALERTS=$($PY -c 'import sys, yaml
print(" ".join(r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r))' "$RULES")
echo "# alerts: $ALERTS"
msg=$($PY - "$RULES" <<'EOF'
import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            print(f"{r['alert']}: severity is {r.get('labels', {}).get('severity')!r}, not critical, warning or info")
        for a in ("summary", "description"):
            if not str(r.get("annotations", {}).get(a, "")).strip():
                print(f"{r['alert']}: no {a} annotation")
EOF
)
[ -z "$msg" ]
tap $? "every alert has a severity label and summary and description annotations"
[ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"

missing=""
for a in $ALERTS; do grep -q "^## $a\$" docs/runbook.md || missing="$missing $a"; done
expect_eq "every alert has its section in docs/runbook.md" "" "$missing"
stale=""
for h in $(sed -n 's/^## \(Topowire[A-Za-z]*\)$/\1/p' docs/runbook.md); do
    case " $ALERTS " in *" $h "*) ;; *) stale="$stale $h" ;; esac
done
expect_eq "every runbook section names an alert that exists" "" "$stale"

# Each alert has a case where it must fire and one where it must stay silent ...
msg=$($PY - "$PROM/alerts.test.yaml" $ALERTS <<'EOF'
import sys, yaml
tests = yaml.safe_load(open(sys.argv[1]))["tests"]
for a in sys.argv[2:]:
    cases = [t for test in tests for t in test.get("alert_rule_test", []) if t["alertname"] == a]
    if not any(c.get("exp_alerts") for c in cases):
        print(f"{a}: no test case where it fires")
    if not any(not c.get("exp_alerts") for c in cases):
        print(f"{a}: no test case where it stays silent")
EOF
)
[ -z "$msg" ]
tap $? "every alert has a promtool case where it fires and one where it stays silent"
[ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
# ... and both kinds of case bite: with every expression made never to fire, each alert fails a
# case that expects it; made always to fire, each fails a case that expects silence.
# mutate EXPR: runs the tests against the rules with every alert's expression replaced; prints,
# for each failed case, "ALERTNAME fired" (it expected alerts) or "ALERTNAME silent" (it expected none).
mutate() {
    $PY - "$RULES" "$1" "$PROM/mutant-rules.yaml" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for g in doc["groups"]:
    for r in g["rules"]:
        r["expr"] = sys.argv[2]
yaml.safe_dump(doc, open(sys.argv[3], "w"), sort_keys=False)
EOF
    sed 's/^  - topowire-rules.yaml$/  - mutant-rules.yaml/' "$PROM/alerts.test.yaml" >"$PROM/mutant.test.yaml"
    (cd "$PROM" && promtool test rules mutant.test.yaml 2>&1) |
        awk '/alertname: / { sub(/.*alertname: /, ""); sub(/,.*/, ""); name = $0; next }
             name != "" && /exp:/ { print name, (/exp:\[\]/ ? "silent" : "fired"); name = "" }'
}
names() { awk -v k="$2" '$2 == k {print $1}' <<<"$1" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
sorted_alerts=$(tr ' ' '\n' <<<"$ALERTS" | sort | tr '\n' ' ' | sed 's/ $//')
expect_eq "promtool's tests fail for each alert made never to fire" "$sorted_alerts" \
    "$(names "$(mutate 'vector(1) == 0')" fired)"
expect_eq "promtool's tests fail for each alert made always to fire" "$sorted_alerts" \
    "$(names "$(mutate 'vector(1)')" silent)"

# --- the metrics a running webhook serves -----------------------------------------------------

CERTS=$TW_TMP/certs
mkdir -p "$CERTS"
"$HOOK" certgen --service topowire-webhook --namespace topowire-system --out-dir "$CERTS" 2>/dev/null
tap $? "certgen makes the serving certificate"
start_kube
LOG=$TW_TMP/hook.log
bg ${HOOK_PREFIX:-} "$HOOK" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" \
    --kubeconfig "$KUBECONFIG_FILE" --log-format json >"$LOG" 2>&1
HOOK_PID=$BG_PID
i=0
until grep -q '"msg":"serving"' "$LOG" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 400 ] || ! kill -0 "$HOOK_PID" 2>/dev/null; then
        echo "# the server did not start:"; sed 's/^/#   /' "$LOG"; break
    fi
    sleep 0.05
done
PORT=$(grep '"msg":"serving"' "$LOG" | jq -r .port)
MPORT=$(grep '"msg":"serving"' "$LOG" | jq -r .metrics_port)
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")" = 200 ]; do
    i=$((i + 1)); [ $i -gt 400 ] && break; sleep 0.05
done
expect_eq "the webhook runs in binding mode and turns ready" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz")"

NAME=topowire-webhook.topowire-system.svc
post() {
    curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary @"$2" "https://$NAME:$PORT$1" >/dev/null
}
post /mutate/pods "$TW_FIXTURES/admission/pod-create-spark-executor.json"
post /mutate/binding "$TW_FIXTURES/admission/binding-create.json"
jq '.request.object.target.name = "ip-10-9-9-9.ec2.internal"' \
    "$TW_FIXTURES/admission/binding-create.json" >"$TW_TMP/unknown.json"
post /mutate/binding "$TW_TMP/unknown.json"
SCRAPE=$TW_TMP/metrics.txt
curl -s "http://127.0.0.1:$MPORT/metrics" >"$SCRAPE"
metric() { awk -v n="$1" '$1 == n {print $2}' "$SCRAPE"; }
expect_eq "the scrape counts the reviews the alerts watch: pods injected, a binding patched, one to an unknown node" \
    "1 1 1 2 1" \
    "$(metric 'topowire_webhook_reviews_total{route="pods",outcome="injected"}') $(metric 'topowire_webhook_reviews_total{route="binding",outcome="patched"}') $(metric 'topowire_webhook_reviews_total{route="binding",outcome="node_unknown"}') $(metric 'topowire_webhook_review_duration_seconds_count{route="binding"}') $(metric topowire_node_cache_gets_total)"
expect_eq "the certificate expiry gauge is the served certificate's notAfter" \
    "$(date -d "$(openssl x509 -in "$CERTS/tls.crt" -noout -enddate | cut -d= -f2)" +%s)" \
    "$(metric topowire_webhook_certificate_expiry_timestamp_seconds)"

out=$(promtool check metrics <"$SCRAPE" 2>&1)
tap $? "promtool check metrics finds nothing to lint in the scrape"
[ -n "$out" ] && sed 's/^/#   /' <<<"$out"

DOCS="--docs README.md"
for f in docs/*.md; do DOCS="$DOCS --docs $f"; done
out=$($METRICS_CHECK --scrape "$SCRAPE" --reference docs/metrics.md --rules "$RULES" $DOCS 2>&1)
tap $? "docs/metrics.md documents every served metric, its type, labels and values; the alerts and docs name only served metrics"
[ -n "$out" ] && sed 's/^/#   /' <<<"$out"
echo "# served: $(grep -c '^# TYPE ' "$SCRAPE") metrics, $(grep -vc '^#' "$SCRAPE") series"

standin_stop "$HOOK_PID" >/dev/null 2>&1
rc=$?
expect_eq "the webhook exits 0 on SIGTERM (under the sanitizers: no leak)" 0 "$rc"
[ "$rc" -ne 0 ] && tail -30 "$LOG" | sed 's/^/#   /'

# --- the metrics checker catches each kind of mistake, naming the metric ----------------------

grep -v '^| `topowire_node_cache_gets_total`' docs/metrics.md >"$TW_TMP/ref-missing.md"
expect_problem "a served metric missing from the reference is named" \
    "topowire_node_cache_gets_total: served (counter, no labels) but not documented in $TW_TMP/ref-missing.md" \
    $METRICS_CHECK --scrape "$SCRAPE" --reference "$TW_TMP/ref-missing.md"
sed 's/^| `topowire_node_cache_nodes` | gauge |/| `topowire_node_cache_nodes` | counter |/' docs/metrics.md >"$TW_TMP/ref-type.md"
expect_problem "a metric documented with the wrong type is named" \
    "topowire_node_cache_nodes: served as a gauge, documented in $TW_TMP/ref-type.md as counter" \
    $METRICS_CHECK --scrape "$SCRAPE" --reference "$TW_TMP/ref-type.md"
{ cat "$SCRAPE"; echo 'topowire_webhook_reviews_total{route="binding",outcome="surprise"} 0'; } >"$TW_TMP/scrape-value.txt"
expect_problem "a served label value the reference does not name is named" \
    "topowire_webhook_reviews_total: served with outcome=\"surprise\", which docs/metrics.md does not name" \
    $METRICS_CHECK --scrape "$TW_TMP/scrape-value.txt" --reference docs/metrics.md
{ cat "$SCRAPE"; printf '# HELP topowire_webhook_refused_total x\n# TYPE topowire_webhook_refused_total counter\ntopowire_webhook_refused_total{client="a"} 1\n'; } >"$TW_TMP/scrape-new.txt"
expect_problem "a new metric served without documentation is named, with its type and labels" \
    "topowire_webhook_refused_total: served (counter, client) but not documented in docs/metrics.md" \
    $METRICS_CHECK --scrape "$TW_TMP/scrape-new.txt" --reference docs/metrics.md
grep -v '^topowire_node_cache_events_total\|^# [A-Z]* topowire_node_cache_events_total ' "$SCRAPE" >"$TW_TMP/scrape-less.txt"
expect_problem "a documented metric that is no longer served is named" \
    "topowire_node_cache_events_total: documented in docs/metrics.md but not served" \
    $METRICS_CHECK --scrape "$TW_TMP/scrape-less.txt" --reference docs/metrics.md
sed 's/topowire_node_cache_ready{/topowire_node_cache_synced{/' "$RULES" >"$TW_TMP/rules-bad.yaml"
expect_problem "a rule naming a metric that is not served is named, with the rule" \
    "topowire_node_cache_synced: named by the rule TopowireNodeCacheNotSynced in $TW_TMP/rules-bad.yaml" \
    $METRICS_CHECK --scrape "$SCRAPE" --reference docs/metrics.md --rules "$TW_TMP/rules-bad.yaml"
sed 's/kube_deployment_spec_replicas{/kube_deployment_status_replicas{/' "$RULES" >"$TW_TMP/rules-ksm.yaml"
expect_problem "a rule naming a kube-state-metrics series not in the documented list is named" \
    "kube_deployment_status_replicas: named by the rule TopowireWebhookReplicasUnavailable" \
    $METRICS_CHECK --scrape "$SCRAPE" --reference docs/metrics.md --rules "$TW_TMP/rules-ksm.yaml"
printf 'Watch `topowire_webhook_bogus_total` and `topowire_node_cache_*`.\n' >"$TW_TMP/page.md"
expect_problem "a docs page naming a metric that is not served is named, with the line" \
    "topowire_webhook_bogus_total: named in $TW_TMP/page.md:1, but the webhook does not serve it" \
    $METRICS_CHECK --scrape "$SCRAPE" --reference docs/metrics.md --docs "$TW_TMP/page.md"

done_testing
