#!/usr/bin/env python3
"""mk/oci.py - pack root filesystems into one reproducible OCI archive (an image index).

  mk/oci.py --out FILE --ref NAME --created EPOCH --config JSON \
            [--chown PATH=UID:GID]... ARCH=ROOTFS...

Each ROOTFS becomes one gzip layer of a linux/ARCH image; the image index lists them all, and
the archive's index.json names that index (so `skopeo copy --all oci-archive:FILE ...` copies
every platform). Everything is a function of the inputs: entries sorted by name, every time
set to EPOCH (SOURCE_DATE_EPOCH), owners 0:0 unless --chown says otherwise, modes reduced to
0755 (directories, executables), 0644 (other files) and 1777 (/tmp), gzip without a name or
time stamp. Two runs over the same trees give byte-identical archives.
Prints one JSON object: the index digest and, per platform, the manifest digest, the
compressed layer size and the unpacked size.
"""
import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
VARIANTS = {"arm64": "v8"}


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(root, epoch, owners):
    """Returns (uncompressed tar bytes, unpacked size in bytes) of the tree at root."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            paths.append(os.path.relpath(os.path.join(dirpath, n), root))
    buf = io.BytesIO()
    unpacked = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(paths):
            full = os.path.join(root, rel)
            st = os.lstat(full)
            ti = tarfile.TarInfo(rel)
            ti.mtime = epoch
            ti.uid, ti.gid = owners.get(rel, (0, 0))
            ti.uname = ti.gname = ""
            data = None
            if stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
                ti.mode = 0o777
            elif stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o1777 if st.st_mode & stat.S_ISVTX else 0o755
            elif stat.S_ISREG(st.st_mode):
                ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
                with open(full, "rb") as f:
                    data = f.read()
                ti.size = len(data)
                unpacked += len(data)
            else:
                sys.exit(f"mk/oci.py: {full}: not a file, directory or symlink")
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue(), unpacked


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as f:
        f.write(data)
    return out.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--created", type=int, required=True)
    ap.add_argument("--config", required=True, help="the image config's 'config' object, JSON")
    ap.add_argument("--chown", action="append", default=[])
    ap.add_argument("platforms", nargs="+", metavar="ARCH=ROOTFS")
    a = ap.parse_args()

    owners = {}
    for c in a.chown:
        path, _, ids = c.partition("=")
        uid, _, gid = ids.partition(":")
        owners[path.strip("/")] = (int(uid), int(gid))
    created = datetime.datetime.fromtimestamp(a.created, datetime.timezone.utc)
    created = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    runtime_config = json.loads(a.config)
    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    summary = {"platforms": {}}
    manifests = []
    for spec in a.platforms:
        arch, _, root = spec.partition("=")
        raw, unpacked = layer_tar(root, a.created, owners)
        layer = blob(gz(raw), LAYER)
        platform = {"architecture": arch, "os": "linux"}
        if arch in VARIANTS:
            platform["variant"] = VARIANTS[arch]
        config = dict(platform)
        config.update({
            "created": created,
            "config": runtime_config,
            "rootfs": {"type": "layers",
                       "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
            "history": [{"created": created, "created_by": "mk/image.sh"}],
        })
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": blob(canonical(config), CONFIG),
            "layers": [layer],
        }
        desc = blob(canonical(manifest), MANIFEST)
        desc["platform"] = platform
        manifests.append(desc)
        summary["platforms"][arch] = {"manifest": desc["digest"], "compressed": layer["size"],
                                      "unpacked": unpacked}
    index = blob(canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}),
                 INDEX)
    index["annotations"] = {"org.opencontainers.image.ref.name": a.ref}
    summary["index"] = index["digest"]

    files = {
        "oci-layout": canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": [index]}),
    }
    for digest, data in blobs.items():
        files["blobs/sha256/" + digest.split(":", 1)[1]] = data
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, a.created
            tar.addfile(ti)
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime, ti.size = 0o644, a.created, len(files[name])
            tar.addfile(ti, io.BytesIO(files[name]))
    os.replace(tmp, a.out)
    json.dump(summary, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
