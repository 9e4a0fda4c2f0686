#!/usr/bin/env bash
# mk/image.sh - `make image`: the topowire container image for linux/amd64 and linux/arm64 as
# one OCI image index in one archive (build/topowire-image.tar), without a container engine.
# Per platform (mk/image-arch.sh): the programs compiled with Debian's compiler for it (arm64:
# the aarch64-linux-gnu cross compiler against the multiarch arm64 packages), laid out with the
# shared objects they load, their packages' licences and dpkg status entries and an SPDX SBOM
# (mk/rootfs.sh); then all platforms packed reproducibly into one index (mk/oci.py). Beside the archive:
# topowire-image-ARCH.spdx.json (the SBOMs) and topowire-image.json (digests and sizes).
# Environment: TW_IMAGE (name, default ghcr.io/topowire/topowire:VERSION), TW_IMAGE_ARCHIVE,
# TW_IMAGE_PLATFORMS (default "amd64 arm64"), TW_IMAGE_BUILD (work directory, default
# build/image), SOURCE_DATE_EPOCH (default: the last commit's time), TW_COMMIT (default HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(cat VERSION)
image=${TW_IMAGE:-ghcr.io/topowire/topowire:$version}
out=${TW_IMAGE_ARCHIVE:-build/topowire-image.tar}
platforms=${TW_IMAGE_PLATFORMS:-amd64 arm64}
work=${TW_IMAGE_BUILD:-build/image}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) ||
        { echo "mk/image.sh: not a git checkout: set SOURCE_DATE_EPOCH" >&2; exit 1; }
fi
: "${TW_COMMIT:=$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
export SOURCE_DATE_EPOCH TW_COMMIT
mkdir -p "$(dirname "$out")"

specs=()
for arch in $platforms; do
    mk/image-arch.sh "$arch" "$work/$arch"
    cp "$work/$arch/rootfs/usr/share/doc/topowire/topowire.spdx.json" "${out%.tar}-$arch.spdx.json"
    specs+=("$arch=$work/$arch/rootfs")
done

created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
config=$(
    cat <<EOF
{"User": "65532:65532", "WorkingDir": "/", "Env": ["PATH=/usr/local/bin"],
 "Entrypoint": ["/usr/local/bin/topowire-init"],
 "Labels": {"org.opencontainers.image.title": "topowire",
  "org.opencontainers.image.version": "$version",
  "org.opencontainers.image.revision": "$TW_COMMIT",
  "org.opencontainers.image.created": "$created",
  "org.opencontainers.image.source": "https://github.com/topowire/topowire",
  "org.opencontainers.image.description": "Give pods their node's zone: topowire-init and topowire-webhook",
  "org.opencontainers.image.licenses": "Apache-2.0"}}
EOF
)
/usr/bin/python3 mk/oci.py --out "$out" --ref "$image" --created "$SOURCE_DATE_EPOCH" \
    --config "$config" --chown etc/topowire=65532:65532 "${specs[@]}" >"${out%.tar}.json"
echo "image: $image ($platforms), commit $TW_COMMIT, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
echo "archive: $out ($(stat -c %s "$out") bytes), sha256 $(sha256sum "$out" | cut -d' ' -f1)"
/usr/bin/python3 - "${out%.tar}.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"index digest: {s['index']}")
for arch, p in sorted(s["platforms"].items()):
    print(f"linux/{arch}: manifest {p['manifest']}, compressed {p['compressed']} bytes, "
          f"unpacked {p['unpacked']} bytes")
EOF
