#!/usr/bin/env python3
"""mk/sbom.py - the SPDX 2.3 JSON SBOM of one platform of the topowire image.

Reads the dpkg status entries the image ships (/var/lib/dpkg/status.d/PKG, written by
mk/rootfs.sh) and writes one document: topowire itself (version, commit) and every Debian
package with versionInfo equal to its status entry and a purl
pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12, each related to topowire by
DEPENDS_ON. The output depends only on its inputs (no clock, no random namespace), so two
builds of one commit give the same bytes.
"""
import argparse
import datetime
import json
import os
import re
import sys


def parse_status(path):
    """Returns the fields of a deb822 paragraph as a dict (continuation lines joined)."""
    fields = {}
    key = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if fields:
                    break
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    return fields


def spdx_id(text):
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", required=True)
    ap.add_argument("--status-dir", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--created", type=int, required=True, help="seconds since the epoch")
    ap.add_argument("--distro", default="debian-12")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    created = datetime.datetime.fromtimestamp(a.created, datetime.timezone.utc)
    top = "SPDXRef-topowire"
    packages = [{
        "name": "topowire",
        "SPDXID": top,
        "versionInfo": a.version,
        "supplier": "Organization: topowire",
        "downloadLocation": f"git+https://github.com/topowire/topowire@{a.commit}",
        "filesAnalyzed": False,
        "sourceInfo": f"built from commit {a.commit}",
        "licenseConcluded": "Apache-2.0",
        "licenseDeclared": "Apache-2.0",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "APPLICATION",
        "comment": "/usr/local/bin/topowire-init and /usr/local/bin/topowire-webhook; "
                   "licence in /usr/share/doc/topowire/LICENSE",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": f"pkg:github/topowire/topowire@{a.version}",
        }],
    }]
    relationships = [{
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": top,
    }]
    for entry in sorted(os.listdir(a.status_dir)):
        st = parse_status(os.path.join(a.status_dir, entry))
        name, version, arch = st.get("Package"), st.get("Version"), st.get("Architecture")
        if not (name and version and arch):
            sys.exit(f"mk/sbom.py: {entry}: no Package, Version or Architecture field")
        source = st.get("Source", name)
        src_name, _, src_version = source.partition(" ")
        src_version = src_version.strip("()") or version
        ident = "SPDXRef-deb-" + spdx_id(f"{name}-{arch}")
        packages.append({
            "name": name,
            "SPDXID": ident,
            "versionInfo": version,
            "supplier": "Organization: Debian",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "sourceInfo": f"built package from: {src_name} {src_version}",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "comment": f"licence in /usr/share/doc/{name}/copyright; "
                       f"status in /var/lib/dpkg/status.d/{name}",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator":
                    f"pkg:deb/debian/{name}@{version}?arch={arch}&distro={a.distro}",
            }],
        })
        relationships.append({
            "spdxElementId": top,
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": ident,
        })
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"topowire-{a.version}-linux-{a.arch}",
        "documentNamespace": "https://github.com/topowire/topowire/spdx/"
                             f"topowire-{a.version}-{a.commit}-linux-{a.arch}",
        "creationInfo": {
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": ["Organization: topowire", f"Tool: topowire-mk-sbom-{a.version}"],
        },
        "documentDescribes": [top],
        "packages": packages,
        "relationships": relationships,
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
