#!/usr/bin/python3
# kubelet-downward.py - what the API server and the kubelet do with a pod, as far as
# tests/integration/downward.sh needs: with --binding, the Binding's annotations (and labels) go
# onto the pod and spec.nodeName is set, as the API server does when it stores a binding; then
# every app container's environment and Downward-API volume files are resolved as the kubelet
# resolves them (a missing annotation or label gives an empty value). Prints JSON:
#   {"CONTAINER": {"env": {"NAME": "VALUE", ...}, "files": {"/mount/path/file": "VALUE", ...}}}
# An unknown fieldPath, or a volume mounted that the pod does not have, is an error (exit 1),
# as the API server would refuse the pod.
import argparse
import json
import re
import sys

FIELD = re.compile(r"^metadata\.(annotations|labels)\['([^']+)'\]$")
PLAIN = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
         "spec.serviceAccountName", "status.podIP", "status.hostIP"}


def fail(msg):
    print("kubelet-downward: " + msg, file=sys.stderr)
    sys.exit(1)


def resolve(pod, ref):
    if ref.get("apiVersion", "v1") != "v1":
        fail("fieldRef apiVersion %r" % ref.get("apiVersion"))
    path = ref.get("fieldPath", "")
    meta = pod.get("metadata") or {}
    m = FIELD.match(path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.annotations", "metadata.labels"):
        kv = meta.get(path.split(".")[1]) or {}
        return "\n".join('%s=%s' % (k, json.dumps(kv[k])) for k in sorted(kv))
    if path in PLAIN:
        obj = pod
        for part in path.split("."):
            obj = (obj or {}).get(part, "")
        return obj or ""
    fail("unsupported fieldPath %r" % path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pod")
    ap.add_argument("--binding")
    args = ap.parse_args()
    pod = json.load(open(args.pod))
    if args.binding:
        b = json.load(open(args.binding))
        meta = pod.setdefault("metadata", {})
        for kind in ("annotations", "labels"):
            add = (b.get("metadata") or {}).get(kind) or {}
            if add:
                if meta.get(kind) is None:
                    meta[kind] = {}
                meta[kind].update(add)
        pod.setdefault("spec", {})["nodeName"] = b["target"]["name"]
    spec = pod.get("spec") or {}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    out = {}
    for c in spec.get("containers") or []:
        env = {}
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "fieldRef" in (e.get("valueFrom") or {}):
                env[e["name"]] = resolve(pod, e["valueFrom"]["fieldRef"])
            else:
                env[e["name"]] = e.get("value", "")
        files = {}
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m["name"])
            if v is None:
                fail("container %s mounts %s, which the pod lacks" % (c["name"], m["name"]))
            for item in (v.get("downwardAPI") or {}).get("items") or []:
                if ".." in item["path"].split("/"):
                    fail("item path %r" % item["path"])
                files[m["mountPath"].rstrip("/") + "/" + item["path"]] = resolve(pod, item["fieldRef"])
        out[c["name"]] = {"env": env, "files": files}
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
