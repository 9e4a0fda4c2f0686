#!/usr/bin/python3
"""k8s-schema-check.py - check Kubernetes objects offline, saying which object and field is wrong.

  k8s-schema-check.py [--label NAME] [--as SCHEMA] FILE...   validate against tests/schemas/
  k8s-schema-check.py --policy [--label NAME] FILE...        topowire's least-privilege rules

FILE is YAML (one or more documents) or JSON; "-" reads standard input, named by --label in
messages. Validation picks the schema from each object's apiVersion and kind
(tests/schemas/<group>_<version>_<Kind>.json, group "core" for the core API); --as NAME uses
tests/schemas/NAME.json for every document instead, for files that are not Kubernetes objects.
Schemas follow the API: unknown fields are errors, as under the API server's strict field
validation (kubectl's default).

One line per problem: "SOURCE: KIND NAMESPACE/NAME (document N): FIELD.PATH: MESSAGE".
Exit status: 0 when everything passes, 1 when a problem was found, 2 on a usage, read or
parse error. Needs Debian's python3-yaml and python3-jsonschema (run with /usr/bin/python3).
"""
import argparse
import difflib
import json
import os
import re
import sys
import warnings

import jsonschema
import yaml

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


class Document:
    """One parsed document and where it came from."""

    def __init__(self, source, index, body):
        self.source = source
        self.index = index
        self.body = body

    def describe(self):
        b = self.body if isinstance(self.body, dict) else {}
        meta = b.get("metadata") if isinstance(b.get("metadata"), dict) else {}
        kind = b.get("kind") if isinstance(b.get("kind"), str) else "object"
        name = meta.get("name") or meta.get("generateName") or "(unnamed)"
        if not isinstance(name, str):
            name = "(unnamed)"
        ns = meta.get("namespace")
        ident = f"{ns}/{name}" if isinstance(ns, str) and ns else name
        return f"{self.source}: {kind} {ident} (document {self.index})"


def load(path, label):
    """Returns the Documents in path (or standard input for "-"); raises ValueError."""
    source = label or ("stdin" if path == "-" else path)
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as e:
        raise ValueError(f"{source}: cannot read: {e.strerror}") from e
    try:
        if path.endswith(".json"):
            bodies = [json.loads(text)]
        else:
            bodies = [b for b in yaml.safe_load_all(text) if b is not None]
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: line {e.lineno}: not valid JSON: {e.msg}") from e
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else "?"
        raise ValueError(f"{source}: line {line}: not valid YAML: {e.problem}") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: not valid YAML: {e}") from e
    if not bodies:
        raise ValueError(f"{source}: no documents")
    return [Document(source, i + 1, b) for i, b in enumerate(bodies)]


class Schemas:
    """The schema files, loaded once; refs between them never leave the directory."""

    def __init__(self, directory):
        self.directory = os.path.relpath(directory)
        self.store = {}
        self.by_file = {}
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
            self.store[schema["$id"]] = schema
            self.by_file[name[:-5]] = schema

    @staticmethod
    def key(api_version, kind):
        group, _, version = api_version.rpartition("/")
        return f"{group or 'core'}_{version}_{kind}"

    def validator(self, name):
        schema = self.by_file.get(name)
        if schema is None:
            return None

        def offline(uri):
            raise jsonschema.RefResolutionError(f"schema {uri} is not in {self.directory}")

        with warnings.catch_warnings():
            # RefResolver is deprecated in newer jsonschema releases, but it is what
            # Debian bookworm's 4.10 offers; it still works in the later ones.
            warnings.simplefilter("ignore", DeprecationWarning)
            resolver = jsonschema.RefResolver.from_schema(
                schema, store=self.store, handlers={"http": offline, "https": offline})
        return jsonschema.Draft202012Validator(schema, resolver=resolver)


def field_path(parts):
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short(value):
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def explain(error):
    """Yields (path, message) for one jsonschema error, in the API's terms."""
    path = list(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        for key in error.instance:
            if key in known or any(re.search(p, key) for p in patterns):
                continue
            hint = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            msg = "unknown field" + (f' (did you mean "{hint[0]}"?)' if hint else "")
            yield field_path(path + [key]), msg
    elif v == "required":
        m = re.match(r"^'(.*)' is a required property$", error.message)
        if m:
            yield field_path(path + [m.group(1)]), "missing required field"
        else:
            yield field_path(path), error.message
    elif v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        yield field_path(path), (f"expected {want}, got {json_type(error.instance)} "
                                 f"{short(error.instance)}")
    elif v == "enum":
        allowed = ", ".join(json.dumps(x) for x in error.validator_value)
        yield field_path(path), f"{short(error.instance)} is not one of: {allowed}"
    elif v == "const":
        yield field_path(path), f"must be {json.dumps(error.validator_value)}"
    else:
        yield field_path(path), error.message


def validate(doc, schemas, forced):
    """Returns the problem lines for one document."""
    b = doc.body
    if forced:
        name = forced
    else:
        if not isinstance(b, dict):
            return [f"{doc.describe()}: not an object but {json_type(b)}"]
        api, kind = b.get("apiVersion"), b.get("kind")
        if not isinstance(api, str) or not isinstance(kind, str) or not api or not kind:
            return [f"{doc.describe()}: not a Kubernetes object: apiVersion and kind are required"]
        name = Schemas.key(api, kind)
    validator = schemas.validator(name)
    if validator is None:
        if forced:
            return [f"{doc.source}: no schema {forced}.json in {schemas.directory}"]
        return [f'{doc.describe()}: unknown apiVersion/kind "{b["apiVersion"]} {b["kind"]}": '
                f"no schema for it in {schemas.directory}"]
    found = set()
    for error in validator.iter_errors(b):
        for path, msg in explain(error):
            found.add((path, msg))
    return [f"{doc.describe()}: {p or '(top level)'}: {m}" for p, m in sorted(found)]


# ---------------------------------------------------------------------------------------
# --policy: what topowire's manifests and pod templates promise beyond a valid schema.

NODE_READ = {("", "nodes")}
EXPECTED_RULES = {
    # (kind, name): the exact set of (apiGroup, resource, verb, resourceName or "")
    ("ClusterRole", "topowire-webhook"): {("", "nodes", v, "") for v in ("get", "list", "watch")},
    ("ClusterRole", "topowire-init"): {("", "nodes", "get", "")},
    ("ClusterRole", "topowire-certgen"): {
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", v, "topowire")
        for v in ("get", "patch")},
    ("Role", "topowire-certgen"): {("", "secrets", "create", "")} | {
        ("", "secrets", v, "topowire-webhook-tls") for v in ("get", "patch")},
}
EXCLUDED_NAMESPACES = {"kube-system", "topowire-system"}


def rule_tuples(rules):
    out = set()
    for r in rules or []:
        if r.get("nonResourceURLs"):
            out.add(("*nonResourceURLs*", "", "", ""))
        for g in r.get("apiGroups") or [""]:
            for res in r.get("resources") or []:
                for verb in r.get("verbs") or []:
                    for rn in r.get("resourceNames") or [""]:
                        out.add((g, res, verb, rn))
    return out


def check_role(doc):
    b = doc.body
    key = (b["kind"], b.get("metadata", {}).get("name"))
    want = EXPECTED_RULES.get(key)
    if want is None:
        return [f"{doc.describe()}: a role topowire does not define (its rules are not reviewed)"]
    got = rule_tuples(b.get("rules"))
    out = []
    for t in sorted(got - want):
        what = f'"{t[2]}" on {t[0] or "core"}/{t[1]}' + (f" named {t[3]}" if t[3] else "")
        out.append(f"{doc.describe()}: rules: grants {what}, beyond what it needs")
    for t in sorted(want - got):
        what = f'"{t[2]}" on {t[0] or "core"}/{t[1]}' + (f" named {t[3]}" if t[3] else "")
        out.append(f"{doc.describe()}: rules: lacks {what}")
    if b.get("aggregationRule"):
        out.append(f"{doc.describe()}: aggregationRule: would let other roles add rules")
    return out


def excluded(selector):
    for e in (selector or {}).get("matchExpressions") or []:
        if e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "NotIn":
            return EXCLUDED_NAMESPACES <= set(e.get("values") or [])
    return False


def check_webhooks(doc):
    out = []
    hooks = doc.body.get("webhooks") or []
    names = {h.get("name"): h for h in hooks}
    if set(names) != {"inject.topowire.io", "binding.topowire.io", "nodename.topowire.io",
                      "downward.topowire.io"}:
        out.append(f"{doc.describe()}: webhooks: expected inject.topowire.io, "
                   f"binding.topowire.io, nodename.topowire.io and downward.topowire.io, found "
                   f"{sorted(n for n in names if n)}")
    for i, h in enumerate(hooks):
        at = f"{doc.describe()}: webhooks[{i}] ({h.get('name')})"
        if h.get("failurePolicy") != "Ignore":
            out.append(f"{at}.failurePolicy: must be Ignore (never block a pod), "
                       f"is {h.get('failurePolicy')}")
        if h.get("sideEffects") != "None":
            out.append(f"{at}.sideEffects: must be None, is {h.get('sideEffects')}")
        t = h.get("timeoutSeconds")
        if not isinstance(t, int) or isinstance(t, bool) or t > 10:
            out.append(f"{at}.timeoutSeconds: must be set and at most 10, is {t}")
        if h.get("admissionReviewVersions") != ["v1"]:
            out.append(f"{at}.admissionReviewVersions: must be [v1]")
        if h.get("matchPolicy") != "Equivalent":
            out.append(f"{at}.matchPolicy: must be Equivalent")
        if not excluded(h.get("namespaceSelector")):
            out.append(f"{at}.namespaceSelector: must exclude kube-system and topowire-system "
                       "(kubernetes.io/metadata.name NotIn)")
        ops = {(o, r) for rule in h.get("rules") or [] for o in rule.get("operations") or []
               for r in rule.get("resources") or []}
        sel_labels = (h.get("namespaceSelector") or {}).get("matchLabels") or {}
        if h.get("name") == "inject.topowire.io":
            if ops != {("CREATE", "pods")}:
                out.append(f"{at}.rules: must match pods CREATE only, matches {sorted(ops)}")
            obj_labels = (h.get("objectSelector") or {}).get("matchLabels") or {}
            if obj_labels.get("topowire.io/inject") != "true":
                out.append(f'{at}.objectSelector: must require topowire.io/inject: "true"')
            if h.get("reinvocationPolicy") != "IfNeeded":
                out.append(f"{at}.reinvocationPolicy: must be IfNeeded")
        if h.get("name") == "nodename.topowire.io":
            if ops != {("CREATE", "pods")}:
                out.append(f"{at}.rules: must match pods CREATE only, matches {sorted(ops)}")
            if sel_labels.get("topowire.io/binding") != "enabled":
                out.append(f"{at}.namespaceSelector: must require topowire.io/binding: enabled")
        if h.get("name") == "downward.topowire.io":
            if ops != {("CREATE", "pods")}:
                out.append(f"{at}.rules: must match pods CREATE only, matches {sorted(ops)}")
            obj_labels = (h.get("objectSelector") or {}).get("matchLabels") or {}
            if obj_labels.get("topowire.io/inject") != "downward":
                out.append(f'{at}.objectSelector: must require topowire.io/inject: "downward"')
            not_bound = any(e.get("key") == "topowire.io/binding" and e.get("operator") == "NotIn"
                            and "enabled" in (e.get("values") or [])
                            for e in (h.get("namespaceSelector") or {}).get("matchExpressions") or [])
            if not not_bound:
                out.append(f"{at}.namespaceSelector: must leave out binding namespaces "
                           "(topowire.io/binding NotIn [enabled]): nodename.topowire.io serves those")
        if h.get("name") == "binding.topowire.io":
            if ops != {("CREATE", "pods/binding")}:
                out.append(f"{at}.rules: must match pods/binding CREATE only, matches {sorted(ops)}")
            if sel_labels.get("topowire.io/binding") != "enabled":
                out.append(f"{at}.namespaceSelector: must require topowire.io/binding: enabled")
    return out


def restricted(podspec, at):
    """The restricted Pod Security Standard, as far as a pod spec shows it."""
    out = []
    psc = podspec.get("securityContext") or {}
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if podspec.get(f):
            out.append(f"{at}.{f}: not allowed under restricted")
    for i, v in enumerate(podspec.get("volumes") or []):
        if "hostPath" in v:
            out.append(f"{at}.volumes[{i}].hostPath: not allowed under restricted")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for group in ("initContainers", "containers"):
        for i, c in enumerate(podspec.get(group) or []):
            where = f"{at}.{group}[{i}] ({c.get('name')})"
            sc = c.get("securityContext") or {}
            nonroot = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            if nonroot is not True:
                out.append(f"{where}.securityContext.runAsNonRoot: must be true (here or in the pod)")
            if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                out.append(f"{where}.securityContext.runAsUser: must not be 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
            if sc.get("privileged"):
                out.append(f"{where}.securityContext.privileged: must not be true")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                out.append(f"{where}.securityContext.capabilities.drop: must include ALL")
            if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
                out.append(f"{where}.securityContext.capabilities.add: only NET_BIND_SERVICE")
            seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
            if seccomp not in ("RuntimeDefault", "Localhost"):
                out.append(f"{where}.securityContext.seccompProfile: must be RuntimeDefault "
                           "(here or in the pod)")
    return out


def check_deployment(doc, docs):
    b = doc.body
    at = f"{doc.describe()}: spec.template.spec"
    spec = (b.get("spec") or {}).get("template", {}).get("spec") or {}
    out = restricted(spec, at)
    if (b.get("spec") or {}).get("replicas", 1) < 2:
        out.append(f"{doc.describe()}: spec.replicas: at least 2")
    keys = {c.get("topologyKey") for c in spec.get("topologySpreadConstraints") or []}
    for k in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        if k not in keys:
            out.append(f"{at}.topologySpreadConstraints: no spread over {k}")
    for i, c in enumerate(spec.get("containers") or []):
        where = f"{at}.containers[{i}] ({c.get('name')})"
        if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            out.append(f"{where}.securityContext.readOnlyRootFilesystem: must be true")
        if not (c.get("resources") or {}).get("requests"):
            out.append(f"{where}.resources.requests: must be set")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
            if got != path:
                out.append(f"{where}.{probe}: must GET {path}, is {got}")
    selector = ((b.get("spec") or {}).get("selector") or {}).get("matchLabels")
    pdbs = [d for d in docs if isinstance(d.body, dict) and d.body.get("kind") == "PodDisruptionBudget"
            and ((d.body.get("spec") or {}).get("selector") or {}).get("matchLabels") == selector]
    if not pdbs:
        out.append(f"{doc.describe()}: no PodDisruptionBudget selects its pods")
    elif (pdbs[0].body.get("spec") or {}).get("minAvailable") != 1:
        out.append(f"{pdbs[0].describe()}: spec.minAvailable: must be 1")
    return out


def check_topowire_pod(podspec, mounts_of, at):
    """The topowire-init recipe in a pod spec (a pod template or a SparkApplication)."""
    out = []
    inits = podspec.get("initContainers") or []
    if not inits or inits[0].get("name") != "topowire-init":
        return [f"{at}.initContainers[0]: must be topowire-init (first, so the file exists "
                "before anything reads it)"]
    init = inits[0]
    env = {e.get("name"): e for e in init.get("env") or []}
    ref = (((env.get("NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {})
    if ref.get("fieldPath") != "spec.nodeName":
        out.append(f"{at}.initContainers[0].env: NODE_NAME must come from fieldRef spec.nodeName")
    vols = {v.get("name"): v for v in podspec.get("volumes") or []}
    ed = (vols.get("topowire") or {}).get("emptyDir")
    if ed is None:
        out.append(f"{at}.volumes: no emptyDir volume named topowire")
    elif ed.get("medium") != "Memory" or ed.get("sizeLimit") != "1Mi":
        out.append(f"{at}.volumes (topowire).emptyDir: must be medium Memory, sizeLimit 1Mi")
    items = {(i.get("path"), (i.get("fieldRef") or {}).get("fieldPath"))
             for i in ((vols.get("podinfo") or {}).get("downwardAPI") or {}).get("items") or []}
    if not {("annotations", "metadata.annotations"), ("labels", "metadata.labels")} <= items:
        out.append(f"{at}.volumes (podinfo): must be a downwardAPI volume with the pod's "
                   "annotations and labels")
    init_mounts = {m.get("name"): m for m in init.get("volumeMounts") or []}
    if (init_mounts.get("topowire") or {}).get("mountPath") != "/etc/topowire":
        out.append(f"{at}.initContainers[0].volumeMounts: topowire must be at /etc/topowire")
    if (init_mounts.get("podinfo") or {}).get("mountPath") is None:
        out.append(f"{at}.initContainers[0].volumeMounts: podinfo is not mounted")
    if (init.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
        out.append(f"{at}.initContainers[0].securityContext.readOnlyRootFilesystem: must be true")
    for where, mounts in mounts_of:
        m = {x.get("name"): x for x in mounts or []}.get("topowire")
        if m is None or m.get("mountPath") != "/etc/topowire" or m.get("readOnly") is not True:
            out.append(f"{where}.volumeMounts: topowire must be mounted read-only at /etc/topowire")
    return out


def check_pod(doc):
    b = doc.body
    spec = b.get("spec") or {}
    labels = (b.get("metadata") or {}).get("labels") or {}
    at = f"{doc.describe()}: spec"
    if labels.get("topowire.io/inject") in ("true", "downward") and not spec.get("initContainers"):
        return []  # the webhook variant: the webhook adds the rest
    mounts = [(f"{at}.containers[{i}] ({c.get('name')})", c.get("volumeMounts"))
              for i, c in enumerate(spec.get("containers") or [])]
    return check_topowire_pod(spec, mounts, at) + restricted(spec, at)


def check_sparkapplication(doc):
    spec = doc.body.get("spec") or {}
    out = []
    for role in ("driver", "executor"):
        r = spec.get(role) or {}
        at = f"{doc.describe()}: spec.{role}"
        podspec = {"initContainers": r.get("initContainers"), "volumes": spec.get("volumes"),
                   "securityContext": r.get("podSecurityContext"),
                   "containers": [{"name": role, "securityContext": r.get("securityContext")}]}
        out += check_topowire_pod(podspec, [(at, r.get("volumeMounts"))], at)
        out += restricted(podspec, at)
    return out


def policy(docs):
    out = []
    for d in docs:
        b = d.body
        kind = b.get("kind") if isinstance(b, dict) else None
        if kind in ("ClusterRole", "Role"):
            out += check_role(d)
        elif kind == "MutatingWebhookConfiguration":
            out += check_webhooks(d)
        elif kind == "Deployment":
            out += check_deployment(d, docs)
        elif kind == "Pod":
            out += check_pod(d)
        elif kind == "SparkApplication":
            out += check_sparkapplication(d)
        elif kind in ("Job", "DaemonSet", "StatefulSet"):
            spec = (b.get("spec") or {}).get("template", {}).get("spec") or {}
            out += restricted(spec, f"{d.describe()}: spec.template.spec")
        if isinstance(b, dict):
            for r in b.get("rules") or [] if kind in ("ClusterRole", "Role") else []:
                for f in ("apiGroups", "resources", "verbs"):
                    if "*" in (r.get(f) or []):
                        out.append(f"{d.describe()}: rules: wildcard in {f}")
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--label", help='name standard input ("-") in messages')
    ap.add_argument("--as", dest="forced", metavar="SCHEMA",
                    help="validate every document against tests/schemas/SCHEMA.json")
    ap.add_argument("--policy", action="store_true", help="check topowire's rules, not schemas")
    ap.add_argument("--schemas", default=SCHEMA_DIR, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    docs = []
    try:
        for f in args.files:
            docs += load(f, args.label if f == "-" else None)
        schemas = None if args.policy else Schemas(args.schemas)
    except (ValueError, OSError, json.JSONDecodeError, jsonschema.SchemaError) as e:
        print(f"k8s-schema-check: {e}", file=sys.stderr)
        return 2
    problems = policy(docs) if args.policy else [
        line for d in docs for line in validate(d, schemas, args.forced)]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
