#!/usr/bin/env bash
# manifests.sh - the kustomize entry points build offline, every object they
# produce and every example passes the API schemas (tests/schemas/), and the
# least-privilege and fail-open promises hold; the checker itself is shown to
# catch each kind of mistake, naming the object and the field.
# tw-variants: plain
. "$(dirname "$0")/../lib.sh"

PY=/usr/bin/python3
CHECK="$PY $TW_ROOT/tests/k8s-schema-check.py"
cd "$TW_ROOT" || exit 1

# No cluster, no kubeconfig, and where the kernel allows it no network at all.
export KUBECONFIG=/nonexistent HOME="$TW_TMP"
offline=""
unshare -n true 2>/dev/null && offline="unshare -n"

# yaml2json: multi-document YAML on stdin to one JSON array on stdout.
yaml2json() {
    $PY -c 'import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)'
}

# q FILE JQ-FILTER: runs jq over the JSON array of the built YAML FILE.
q() {
    yaml2json <"$1" | jq -r "$2"
}

# mutate IN OUT PYTHON: loads the documents of IN, runs PYTHON with docs and
# find(kind, name=None) in scope, writes the result to OUT.
mutate() {
    $PY - "$1" "$2" "$3" <<'EOF'
import sys, yaml
src, dst, code = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(src)) if d is not None]
def find(kind, name=None):
    return next(d for d in docs if d["kind"] == kind and name in (None, d["metadata"].get("name")))
exec(code)
yaml.safe_dump_all(docs, open(dst, "w"), sort_keys=False)
EOF
}

# expect_problem DESCRIPTION EXPECTED-LINE COMMAND...: the command exits 1 and
# prints EXPECTED-LINE (a fixed string) among its lines.
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

# --- the examples ------------------------------------------------------------------

for f in $(find examples -name '*.yaml' | sort); do
    msg=$($CHECK "$f" 2>&1)
    tap $? "$f passes the API schemas"
    [ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
done
msg=$($CHECK --as emr-containers_StartJobRun examples/emr-on-eks/start-job-run.json 2>&1)
tap $? "examples/emr-on-eks/start-job-run.json is a valid StartJobRun request"
[ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
expect_eq "examples/spark/spark-submit.sh is valid sh" 0 "$(sh -n examples/spark/spark-submit.sh; echo $?)"
expect_eq "examples/webhook/spark-submit.sh is valid sh" 0 "$(sh -n examples/webhook/spark-submit.sh; echo $?)"

# librdkafka has no config providers, but reads rack.properties as it is: the
# file's format (client.rack=VALUE, as topowire-init writes it) is a valid
# librdkafka configuration, and kcat rejects any key librdkafka does not know.
printf 'client.rack=use1-az4\n' >"$TW_TMP/rack.properties"
out=$(kcat -F examples/kafka/librdkafka.properties -F "$TW_TMP/rack.properties" -X dump 2>&1)
expect_eq "librdkafka takes client.rack from a rack.properties beside the example config" \
    "0 client.rack = use1-az4" "$? $(grep '^client.rack = ' <<<"$out")"
printf 'client.rack=\n' >"$TW_TMP/rack-empty.properties"
out=$(kcat -F "$TW_TMP/rack-empty.properties" -X dump 2>&1)
expect_eq "an empty client.rack (--on-missing=empty) is accepted as no rack" \
    "0 client.rack = " "$? $(grep '^client.rack = ' <<<"$out")"
printf 'client.rak=use1-az4\n' >"$TW_TMP/rack-typo.properties"
kcat -F "$TW_TMP/rack-typo.properties" -X dump >/dev/null 2>&1
expect_eq "...while kcat does reject a key librdkafka does not know" 1 "$?"
for f in examples/kafka/consumer.properties examples/kafka/connect-distributed.properties; do
    grep -qxF 'config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider' "$f" &&
        grep -qE '^(consumer\.)?client\.rack=\$\{file:/etc/topowire/rack\.properties:client\.rack\}$' "$f"
    tap $? "$f names the provider and reads client.rack from rack.properties"
done
grep -qxF 'client.rack=${dir:/etc/topowire:client.rack}' examples/kafka/consumer-directory.properties
tap $? "examples/kafka/consumer-directory.properties reads the bare client.rack file"
# The Spark examples spell the recipe exactly, with a lower-case alias.
for f in examples/spark/orders_stream.py; do
    grep -qF '"kafka.config.providers", "file"' "$f" &&
        grep -qF '"org.apache.kafka.common.config.provider.FileConfigProvider"' "$f" &&
        grep -qF '"kafka.client.rack", "${file:/etc/topowire/rack.properties:client.rack}"' "$f"
    tap $? "$f sets the three kafka.* options of the recipe"
done

# --- every entry point builds offline, with every kubectl we support ---------------

# The kubectl on PATH is the pinned current one (mk/kubectl.sh, build/tools/bin
# first on PATH through tests/lib.sh) or, where that could not be fetched, the
# machine's own. MIN_MINOR is the oldest kubectl the docs promise (README,
# docs/deploy.md): kustomize's `labels` field needs kustomize v4.1+, and 1.22 is
# the oldest kubectl with such a kustomize that the suite can run.
MIN_MINOR=22
entries="manifests/base manifests/overlays/cert-manager manifests/overlays/self-signed manifests/init-only"

# kubectl_minor KUBECTL: the client's minor version (22 for 1.22.0), or 0.
kubectl_minor() {
    "$1" version --client -o json 2>/dev/null | jq -r '.clientVersion.minor // "0"' | tr -dc '0-9'
}

# canonical FILE: the objects of a multi-document YAML file, sorted, as JSON -
# equal for two builds that differ only in order or formatting.
canonical() {
    $PY -c 'import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
key = lambda d: (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
print(json.dumps(sorted(docs, key=key), sort_keys=True))' "$1"
}

primary=$(command -v kubectl)
primary_minor=$(kubectl_minor "$primary")
echo "# kubectl on PATH: $primary (1.${primary_minor:-?})"
if [ "${primary_minor:-0}" -lt "$MIN_MINOR" ]; then
    why="the kubectl on PATH ($primary, 1.${primary_minor:-?}) is older than 1.$MIN_MINOR and mk/kubectl.sh could not fetch the pinned one"
    for e in $entries; do
        tap 0 "kubectl kustomize $e and every check of its objects # SKIP $why"
    done
    done_testing
    exit
fi
for e in $entries; do
    out="$TW_TMP/$(echo "$e" | tr / _).yaml"
    $offline kubectl kustomize "$e" >"$out" 2>"$out.err"
    rc=$?
    [ $rc -eq 0 ] && [ -s "$out" ]
    tap $? "kubectl kustomize $e builds offline"
    [ $rc -ne 0 ] && sed 's/^/#   /' "$out.err"
    [ $rc -eq 0 ] && [ ! -s "$out.err" ]
    tap $? "kubectl 1.$primary_minor builds $e without a warning (nothing deprecated)"
    [ -s "$out.err" ] && sed 's/^/#   /' "$out.err"
done

# The oldest supported kubectl and the machine's own build the same objects,
# silently; a kubectl older than the minimum fails, as the docs say.
others="$TW_ROOT/build/tools/kubectl-1.22.0/kubectl"
for k in $(type -a -p kubectl); do
    [ "$(readlink -f "$k")" = "$(readlink -f "$primary")" ] || others="$others $k"
done
for k in $others; do
    if [ ! -x "$k" ]; then
        for e in $entries; do
            tap 0 "kubectl 1.$MIN_MINOR builds $e as the current one does # SKIP not fetched (mk/kubectl.sh: linux/amd64 and npm only)"
        done
        continue
    fi
    minor=$(kubectl_minor "$k")
    for e in $entries; do
        out="$TW_TMP/$(echo "$e" | tr / _).yaml"
        $offline "$k" kustomize "$e" >"$out.other" 2>"$out.other.err"
        rc=$?
        if [ "${minor:-0}" -ge "$MIN_MINOR" ]; then
            [ $rc -eq 0 ] && [ ! -s "$out.other.err" ] && [ "$(canonical "$out")" = "$(canonical "$out.other")" ]
            tap $? "kubectl 1.$minor ($k) builds $e silently, the same objects as 1.$primary_minor"
            sed 's/^/#   /' "$out.other.err"
        else
            [ $rc -ne 0 ]
            tap $? "kubectl 1.$minor ($k), older than the minimum 1.$MIN_MINOR, refuses $e, as docs/deploy.md says"
            sed 's/^/#   /' "$out.other.err"
        fi
    done
done
BASE=$TW_TMP/manifests_base.yaml
CM=$TW_TMP/manifests_overlays_cert-manager.yaml
SS=$TW_TMP/manifests_overlays_self-signed.yaml
INIT=$TW_TMP/manifests_init-only.yaml

kinds() { q "$1" '[.[] | .kind + "/" + .metadata.name] | sort | join(" ")'; }
expect_eq "base holds exactly the webhook's objects" \
    "ClusterRole/topowire-webhook ClusterRoleBinding/topowire-webhook Deployment/topowire-webhook MutatingWebhookConfiguration/topowire Namespace/topowire-system NetworkPolicy/topowire-webhook PodDisruptionBudget/topowire-webhook Service/topowire-webhook ServiceAccount/topowire-webhook" \
    "$(kinds "$BASE")"
expect_eq "cert-manager overlay adds two issuers and two certificates" \
    "Certificate/topowire-ca Certificate/topowire-webhook Issuer/topowire-ca Issuer/topowire-selfsigned" \
    "$(kinds "$CM" | tr ' ' '\n' | grep -E '^(Certificate|Issuer)/' | tr '\n' ' ' | sed 's/ $//')"
expect_eq "self-signed overlay adds the Job and its own RBAC" \
    "ClusterRole/topowire-certgen ClusterRoleBinding/topowire-certgen Job/topowire-certgen Role/topowire-certgen RoleBinding/topowire-certgen ServiceAccount/topowire-certgen" \
    "$(kinds "$SS" | tr ' ' '\n' | grep certgen | tr '\n' ' ' | sed 's/ $//')"
expect_eq "init-only holds a ClusterRole and the Spark example binding" \
    "ClusterRole/topowire-init ClusterRoleBinding/topowire-init-spark" "$(kinds "$INIT")"
expect_eq "every namespaced object of base is in topowire-system" "topowire-system" \
    "$(q "$BASE" '[.[] | select(.metadata.namespace) | .metadata.namespace] | unique | join(",")')"

# --- the objects are valid against the API schemas --------------------------------

for e in $entries; do
    out="$TW_TMP/$(echo "$e" | tr / _).yaml"
    msg=$($CHECK --label "$e" "$out" 2>&1)
    tap $? "every object of $e passes the API schemas"
    [ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
done
# --- least privilege, fail-open, restricted pods ----------------------------------

for e in $entries; do
    out="$TW_TMP/$(echo "$e" | tr / _).yaml"
    msg=$($CHECK --policy --label "$e" "$out" 2>&1)
    tap $? "$e keeps topowire's RBAC, webhook and pod-security rules"
    [ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
done
for f in $(find examples -name '*.yaml' | sort); do
    msg=$($CHECK --policy "$f" 2>&1)
    tap $? "$f has the init container recipe and a restricted security context"
    [ -n "$msg" ] && sed 's/^/#   /' <<<"$msg"
done

expect_eq "the webhook's ClusterRole is get, list, watch on nodes and nothing else" \
    '[{"apiGroups":[""],"resources":["nodes"],"verbs":["get","list","watch"]}]' \
    "$(q "$BASE" '[.[] | select(.kind == "ClusterRole")][0].rules | tojson')"
expect_eq "init-only's ClusterRole is get on nodes and nothing else" \
    '[{"apiGroups":[""],"resources":["nodes"],"verbs":["get"]}]' \
    "$(q "$INIT" '[.[] | select(.kind == "ClusterRole")][0].rules | tojson')"
expect_eq "all four webhooks fail open, have no side effects and time out within 10 s" \
    "Ignore None true|Ignore None true|Ignore None true|Ignore None true" \
    "$(q "$BASE" '[.[] | select(.kind == "MutatingWebhookConfiguration") | .webhooks[] |
        "\(.failurePolicy) \(.sideEffects) \(.timeoutSeconds <= 10)"] | join("|")')"
expect_eq "all four webhooks exclude kube-system and topowire-system" "true|true|true|true" \
    "$(q "$BASE" '[.[] | select(.kind == "MutatingWebhookConfiguration") | .webhooks[] |
        [.namespaceSelector.matchExpressions[] | select(.key == "kubernetes.io/metadata.name"
          and .operator == "NotIn") | .values | contains(["kube-system", "topowire-system"])]
        | any] | map(tostring) | join("|")')"
expect_eq "the binding webhook needs the namespace opt-in and the exclusion at once" \
    "enabled NotIn" \
    "$(q "$BASE" '.[] | select(.kind == "MutatingWebhookConfiguration") | .webhooks[] |
        select(.name == "binding.topowire.io") | .namespaceSelector |
        "\(.matchLabels["topowire.io/binding"]) \(.matchExpressions[0].operator)"')"

# --- the network boundary ------------------------------------------------------------

# The NetworkPolicy selects exactly the webhook's pods (not the certgen Job's),
# admits only its two named ports, the webhook port from API-server sources and
# never from every pod, and metrics only from the monitoring namespace.
np='.[] | select(.kind == "NetworkPolicy")'
expect_eq "the NetworkPolicy selects the Deployment's pods, for ingress" "true Ingress" \
    "$(q "$BASE" "($np | .spec.podSelector.matchLabels) as \$s |
        ([.[] | select(.kind == \"Deployment\")][0].spec.template.metadata.labels) as \$l |
        (\$s | to_entries | all(.value == \$l[.key])) | tostring") $(q "$BASE" "$np | .spec.policyTypes | join(\",\")")"
expect_eq "...and not the certgen Job's pods" "false" \
    "$(q "$SS" "($np | .spec.podSelector.matchLabels) as \$s |
        ([.[] | select(.kind == \"Job\")][0].spec.template.metadata.labels // {}) as \$l |
        (\$s | to_entries | all(.value == \$l[.key])) | tostring")"
expect_eq "its ports are the container's named ports https and metrics, TCP" "https/TCP metrics/TCP" \
    "$(q "$BASE" "[$np | .spec.ingress[].ports[] | \"\\(.port)/\\(.protocol)\"] | join(\" \")")"
expect_eq "the container names those ports" "https metrics" \
    "$(q "$BASE" '[.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].ports[].name] | join(" ")')"
expect_eq "every ingress rule names its sources (an empty from admits everyone)" "true" \
    "$(q "$BASE" "[$np | .spec.ingress[] | (.from | length) > 0] | all | tostring")"
expect_eq "the webhook port admits no all-IPv4 block and no selector that matches every pod" "0" \
    "$(q "$BASE" "[$np | .spec.ingress[] | select(.ports[0].port == \"https\") | .from[] |
        select(.ipBlock.cidr == \"0.0.0.0/0\" or (.ipBlock == null and .podSelector == null))] | length")"
expect_eq "the webhook port admits the private ranges and the konnectivity agents in kube-system" \
    "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 ::/0 kube-system:konnectivity-agent kube-system:konnectivity-agent" \
    "$(q "$BASE" "[$np | .spec.ingress[] | select(.ports[0].port == \"https\") | .from[] |
        if .ipBlock then .ipBlock.cidr else
        \"\\(.namespaceSelector.matchLabels[\"kubernetes.io/metadata.name\"]):\\(.podSelector.matchLabels | to_entries[0].value)\" end] | join(\" \")")"
expect_eq "metrics are admitted from the monitoring namespace only" '[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]' \
    "$(q "$BASE" "$np | .spec.ingress[] | select(.ports[0].port == \"metrics\") | .from | tojson")"

# --- the pieces fit together ------------------------------------------------------

svc_port=$(q "$BASE" '.[] | select(.kind == "Service") | .spec.ports[] | select(.port == 443) | .targetPort')
expect_eq "Service 443 targets the container's https port 8443" 8443 \
    "$(q "$BASE" ".[] | select(.kind == \"Deployment\") | .spec.template.spec.containers[0].ports[] |
        select(.name == \"$svc_port\") | .containerPort")"
expect_eq "all four webhooks call the Service, at their paths" \
    "topowire-webhook.topowire-system:443/mutate/pods topowire-webhook.topowire-system:443/mutate/binding topowire-webhook.topowire-system:443/mutate/pods topowire-webhook.topowire-system:443/mutate/pods/no-binding" \
    "$(q "$BASE" '[.[] | select(.kind == "MutatingWebhookConfiguration") | .webhooks[].clientConfig.service |
        "\(.name).\(.namespace):\(.port)\(.path)"] | join(" ")')"
expect_eq "the Service selects the Deployment's pods" "true" \
    "$(q "$BASE" '([.[] | select(.kind == "Service")][0].spec.selector) as $s |
        ([.[] | select(.kind == "Deployment")][0].spec.template.metadata.labels) as $l |
        ($s | to_entries | all(.value == $l[.key]))')"
secret=$(q "$BASE" '.[] | select(.kind == "Deployment") | .spec.template.spec.volumes[] | select(.secret) | .secret.secretName')
expect_eq "cert-manager issues the serving certificate into the Secret the Deployment mounts" \
    "$secret" "$(q "$CM" '.[] | select(.kind == "Certificate" and .metadata.name == "topowire-webhook") | .spec.secretName')"
expect_eq "the serving certificate names the Service's DNS names" \
    "topowire-webhook.topowire-system.svc topowire-webhook.topowire-system.svc.cluster.local" \
    "$(q "$CM" '.[] | select(.kind == "Certificate" and .metadata.name == "topowire-webhook") | .spec.dnsNames | join(" ")')"
expect_eq "cainjector is pointed at that certificate" "topowire-system/topowire-webhook" \
    "$(q "$CM" '.[] | select(.kind == "MutatingWebhookConfiguration") | .metadata.annotations["cert-manager.io/inject-ca-from"]')"
expect_eq "the CA issuer uses the CA certificate's Secret" \
    "$(q "$CM" '.[] | select(.kind == "Certificate" and .metadata.name == "topowire-ca") | .spec.secretName')" \
    "$(q "$CM" '.[] | select(.kind == "Issuer" and .spec.ca) | .spec.ca.secretName')"
expect_eq "certgen writes the mounted Secret and patches this webhook configuration" \
    "certgen --service=topowire-webhook --namespace=topowire-system --out-dir=/run/certgen --secret=$secret --patch-webhook=topowire" \
    "$(q "$SS" '.[] | select(.kind == "Job") | .spec.template.spec.containers[0].args | join(" ")')"
expect_eq "certgen may patch only the webhook configuration the base defines" \
    "$(q "$BASE" '.[] | select(.kind == "MutatingWebhookConfiguration") | .metadata.name')" \
    "$(q "$SS" '.[] | select(.kind == "ClusterRole" and .metadata.name == "topowire-certgen") | .rules[0].resourceNames | join(",")')"

expect_eq "docs/deploy.md's image patch replaces the --init-image argument (args/5)" \
    "--init-image=ghcr.io/topowire/topowire:0.1.0" \
    "$(q "$BASE" '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args[5]')"
expect_eq "the webhook injects the image it runs itself" \
    "$(q "$BASE" '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].image')" \
    "$(q "$BASE" '.[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].args[5] | sub("^--init-image="; "")')"

# --- the checker catches each kind of mistake --------------------------------------

bad=$TW_TMP/bad
mkdir -p "$bad"
cat >"$bad/type.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: two
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          securityContext: {runAsNonRoot: "yes"}
EOF
expect_problem "a value of the wrong type is named with its object and field" \
    'type.yaml: Deployment shop/web (document 1): spec.replicas: expected integer, got string "two"' \
    $CHECK "$bad/type.yaml"
expect_problem "a nested wrong type is found too" \
    'spec.template.spec.containers[0].securityContext.runAsNonRoot: expected boolean, got string "yes"' \
    $CHECK "$bad/type.yaml"

cat >"$bad/required.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - image: busybox
  volumes:
    - emptyDir: {}
EOF
expect_problem "a missing required field is named" \
    'Pod p (document 1): spec.containers[0].name: missing required field' $CHECK "$bad/required.yaml"
expect_problem "a volume without a name is caught" \
    'spec.volumes[0].name: missing required field' $CHECK "$bad/required.yaml"

cat >"$bad/kind.yaml" <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
EOF
expect_problem "an unknown apiVersion/kind is reported" \
    'Widget w (document 1): unknown apiVersion/kind "example.com/v1 Widget"' $CHECK "$bad/kind.yaml"
printf 'apiVersion: v1\nkind: Pods\nmetadata: {name: p}\n' >"$bad/kind2.yaml"
expect_problem "a misspelled kind is an unknown kind" 'unknown apiVersion/kind "v1 Pods"' $CHECK "$bad/kind2.yaml"
printf 'metadata: {name: x}\nspec: {}\n' >"$bad/nokind.yaml"
expect_problem "a document without apiVersion and kind is not taken for an object" \
    'not a Kubernetes object: apiVersion and kind are required' $CHECK "$bad/nokind.yaml"

cat >"$bad/spelling.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: n}
spec:
  initContainer:
    - name: x
  containers:
    - name: c
      imagePulPolicy: Always
EOF
expect_problem "a misspelled field is unknown, with the likely intended name" \
    'Pod n/p (document 1): spec.containers[0].imagePulPolicy: unknown field (did you mean "imagePullPolicy"?)' \
    $CHECK "$bad/spelling.yaml"
expect_problem "a misspelled list field is caught" \
    'spec.initContainer: unknown field (did you mean "initContainers"?)' $CHECK "$bad/spelling.yaml"

cat >"$bad/crd.yaml" <<'EOF'
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: c, namespace: n}
spec:
  secretName: s
  dnsName: [a.example]
  issuerRef: {name: i}
EOF
expect_problem "a custom resource's unknown field is caught" \
    'Certificate n/c (document 1): spec.dnsName: unknown field (did you mean "dnsNames"?)' $CHECK "$bad/crd.yaml"

cat >"$bad/enum.yaml" <<'EOF'
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: m}
webhooks:
  - name: a.example.com
    admissionReviewVersions: [v1]
    clientConfig: {service: {name: s, namespace: n}}
    sideEffects: Some
    failurePolicy: Ignored
    timeoutSeconds: 45
EOF
expect_problem "a value outside the allowed set is caught" \
    'webhooks[0].failurePolicy: "Ignored" is not one of: "Ignore", "Fail"' $CHECK "$bad/enum.yaml"
expect_problem "v1 webhooks must declare no side effects" \
    'webhooks[0].sideEffects: "Some" is not one of: "None", "NoneOnDryRun"' $CHECK "$bad/enum.yaml"
expect_problem "a webhook timeout over the API's 30 s limit is caught" \
    'webhooks[0].timeoutSeconds: 45 is greater than the maximum of 30' $CHECK "$bad/enum.yaml"

printf -- '---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bad}\nautomount: true\n' >"$bad/second.yaml"
expect_problem "a problem in the second document says so" \
    'ServiceAccount bad (document 2): automount: unknown field' $CHECK "$bad/second.yaml"
expect_eq "...and the first, valid, document is not reported" 1 \
    "$($CHECK "$bad/second.yaml" | wc -l | tr -d ' ')"

printf '{"virtualClusterId": "x", "releaseLabel": "emr-7.2.0-latest", "executionRoleArn": "arn"}\n' >"$bad/jobrun.json"
expect_problem "a StartJobRun request without jobDriver is caught" \
    'jobrun.json: object (unnamed) (document 1): jobDriver: missing required field' \
    $CHECK --as emr-containers_StartJobRun "$bad/jobrun.json"

$CHECK - </dev/null >/dev/null 2>&1
expect_eq "standard input with no documents is an error (exit 2)" 2 "$?"
: >"$bad/empty.yaml"
out=$($CHECK examples/spark/executor-pod-template.yaml "$bad/empty.yaml" 2>&1)
expect_eq "an empty file is an error even beside a valid one (exit 2)" 2 "$?"
grep -qF 'empty.yaml: no documents' <<<"$out"
tap $? "...and names the empty file"
printf 'a: [1, 2\n' >"$bad/syntax.yaml"
out=$($CHECK "$bad/syntax.yaml" 2>&1)
expect_eq "a YAML syntax error exits 2" 2 "$?"
grep -q 'syntax.yaml: line 2: not valid YAML' <<<"$out"
tap $? "...and names the file and line"
$CHECK --as no-such-schema "$bad/jobrun.json" >/dev/null 2>&1
expect_eq "an unknown --as schema is reported (exit 1)" 1 "$?"
out=$($CHECK examples/spark/executor-pod-template.yaml 2>&1)
expect_eq "a valid file passes silently (exit 0)" "0:" "$?:$out"

# --- the policy check catches regressions in the real manifests --------------------

m=$TW_TMP/mut.yaml
mutate "$BASE" "$m" 'find("MutatingWebhookConfiguration")["webhooks"][1]["failurePolicy"] = "Fail"'
expect_problem "a webhook that could block pods is caught" \
    'webhooks[1] (binding.topowire.io).failurePolicy: must be Ignore (never block a pod), is Fail' \
    $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("MutatingWebhookConfiguration")["webhooks"][0]["timeoutSeconds"] = 15'
expect_problem "a webhook timeout over 10 s is caught" \
    'webhooks[0] (inject.topowire.io).timeoutSeconds: must be set and at most 10, is 15' $CHECK --policy "$m"
mutate "$BASE" "$m" 'del find("MutatingWebhookConfiguration")["webhooks"][0]["timeoutSeconds"]'
expect_problem "a webhook relying on the default timeout is caught" \
    'timeoutSeconds: must be set and at most 10, is None' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("MutatingWebhookConfiguration")["webhooks"][0]["sideEffects"] = "NoneOnDryRun"'
expect_problem "side effects other than None are caught" \
    'webhooks[0] (inject.topowire.io).sideEffects: must be None' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("MutatingWebhookConfiguration")["webhooks"][1]["namespaceSelector"]["matchExpressions"][0]["values"] = ["topowire-system"]'
expect_problem "a webhook that would match kube-system is caught" \
    'webhooks[1] (binding.topowire.io).namespaceSelector: must exclude kube-system and topowire-system' \
    $CHECK --policy "$m"
mutate "$BASE" "$m" 'del find("MutatingWebhookConfiguration")["webhooks"][1]["namespaceSelector"]["matchLabels"]'
expect_problem "a binding webhook without the namespace opt-in is caught" \
    'namespaceSelector: must require topowire.io/binding: enabled' $CHECK --policy "$m"
mutate "$BASE" "$m" 'del find("MutatingWebhookConfiguration")["webhooks"][0]["objectSelector"]'
expect_problem "an injection webhook without the pod opt-in is caught" \
    'objectSelector: must require topowire.io/inject: "true"' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("MutatingWebhookConfiguration")["webhooks"][3]["objectSelector"]["matchLabels"]["topowire.io/inject"] = "true"'
expect_problem "a downward webhook that selects init-injected pods is caught" \
    'objectSelector: must require topowire.io/inject: "downward"' $CHECK --policy "$m"
mutate "$BASE" "$m" 'del find("MutatingWebhookConfiguration")["webhooks"][3]["namespaceSelector"]["matchExpressions"][0]'
expect_problem "a downward webhook that also takes binding namespaces (served twice) is caught" \
    'must leave out binding namespaces' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("ClusterRole")["rules"][0]["verbs"].append("patch")'
expect_problem "a ClusterRole granting more than node reads is caught" \
    'ClusterRole topowire-webhook (document 3): rules: grants "patch" on core/nodes, beyond what it needs' \
    $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("ClusterRole")["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})'
expect_problem "a ClusterRole reading secrets is caught" \
    'grants "get" on core/secrets, beyond what it needs' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("ClusterRole")["rules"][0]["resources"] = ["*"]'
expect_problem "a wildcard resource is caught" 'rules: wildcard in resources' $CHECK --policy "$m"
mutate "$SS" "$m" 'del find("ClusterRole", "topowire-certgen")["rules"][0]["resourceNames"]'
expect_problem "certgen patching any webhook configuration is caught" \
    'grants "patch" on admissionregistration.k8s.io/mutatingwebhookconfigurations, beyond what it needs' \
    $CHECK --policy "$m"
mutate "$SS" "$m" 'find("Role", "topowire-certgen")["rules"][1]["resourceNames"] = ["topowire-webhook-tls", "other"]'
expect_problem "certgen reading another Secret is caught" \
    'grants "get" on core/secrets named other, beyond what it needs' $CHECK --policy "$m"
c='find("Deployment")["spec"]["template"]["spec"]["containers"][0]["securityContext"]'
mutate "$BASE" "$m" "$c[\"readOnlyRootFilesystem\"] = False; $c[\"allowPrivilegeEscalation\"] = True"
expect_problem "a writable root filesystem in the webhook is caught" \
    'containers[0] (webhook).securityContext.readOnlyRootFilesystem: must be true' $CHECK --policy "$m"
expect_problem "privilege escalation in the webhook is caught" \
    'containers[0] (webhook).securityContext.allowPrivilegeEscalation: must be false' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("Deployment")["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"); find("Deployment")["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("seccompProfile")'
expect_problem "a pod without a seccomp profile is caught" \
    'seccompProfile: must be RuntimeDefault (here or in the pod)' $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("PodDisruptionBudget")["spec"]["minAvailable"] = 0'
expect_problem "a PodDisruptionBudget that protects nothing is caught" \
    'PodDisruptionBudget topowire-system/topowire-webhook (document 7): spec.minAvailable: must be 1' \
    $CHECK --policy "$m"
mutate "$BASE" "$m" 'find("Deployment")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/healthz"'
expect_problem "a readiness probe not on /readyz is caught" \
    'readinessProbe: must GET /readyz, is /healthz' $CHECK --policy "$m"

ex=examples/spark/executor-pod-template.yaml
mutate "$ex" "$m" 's = docs[0]["spec"]; s["initContainers"].insert(0, {"name": "other", "image": "x"})'
expect_problem "an init container that does not run first is caught" \
    'spec.initContainers[0]: must be topowire-init' $CHECK --policy "$m"
mutate "$ex" "$m" 'del docs[0]["spec"]["initContainers"][0]["env"]'
expect_problem "an init container without NODE_NAME is caught" \
    'NODE_NAME must come from fieldRef spec.nodeName' $CHECK --policy "$m"
mutate "$ex" "$m" 'docs[0]["spec"]["volumes"][0]["emptyDir"] = {}'
expect_problem "a disk-backed or unbounded topowire volume is caught" \
    'volumes (topowire).emptyDir: must be medium Memory, sizeLimit 1Mi' $CHECK --policy "$m"
mutate "$ex" "$m" 'docs[0]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False'
expect_problem "a writable mount in the Spark container is caught" \
    'containers[0] (spark-kubernetes-executor).volumeMounts: topowire must be mounted read-only at /etc/topowire' \
    $CHECK --policy "$m"
mutate "$ex" "$m" 'docs[0]["spec"]["volumes"].pop(1)'
expect_problem "a template without the podinfo volume is caught" \
    'volumes (podinfo): must be a downwardAPI volume' $CHECK --policy "$m"
mutate "$ex" "$m" 'docs[0]["spec"].pop("securityContext"); docs[0]["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")'
expect_problem "a Spark container that may run as root is caught" \
    'containers[0] (spark-kubernetes-executor).securityContext.runAsNonRoot: must be true' $CHECK --policy "$m"
mutate examples/spark-operator/sparkapplication.yaml "$m" 'docs[0]["spec"]["executor"]["initContainers"] = []'
expect_problem "a SparkApplication whose executors miss the init container is caught" \
    'spec.executor.initContainers[0]: must be topowire-init' $CHECK --policy "$m"

done_testing
