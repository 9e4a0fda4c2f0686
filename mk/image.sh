#!/usr/bin/env bash
# mk/image.sh - `make image`: build the topowire container image without a
# Docker engine: buildah from scratch with the programs and exactly the
# shared objects they load, saved as an OCI archive (build/topowire-image.tar).
# Users with Docker or Podman can build the same image from the Containerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(cat VERSION)
image=${TW_IMAGE:-ghcr.io/topowire/topowire:$version}
out=${TW_IMAGE_ARCHIVE:-build/topowire-image.tar}
storage=(--storage-driver vfs)
make -s -j"$(nproc)" programs
mk/rootfs.sh bin build/rootfs
ctr=$(buildah "${storage[@]}" from --quiet scratch)
trap 'buildah "${storage[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah "${storage[@]}" copy --quiet "$ctr" build/rootfs/ /
buildah "${storage[@]}" config \
    --user 65532:65532 \
    --workingdir / \
    --entrypoint '["/usr/local/bin/topowire-init"]' \
    --cmd '[]' \
    --env PATH=/usr/local/bin \
    --label org.opencontainers.image.title=topowire \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.description="Give pods their node's zone: topowire-init and topowire-webhook" \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    "$ctr"
buildah "${storage[@]}" commit --quiet --rm "$ctr" "$image" >/dev/null
trap - EXIT
rm -f "$out"
buildah "${storage[@]}" push --quiet "$image" "oci-archive:$out:$image"
echo "image: $image"
echo "archive: $out ($(stat -c %s "$out") bytes, uncompressed root filesystem $(du -sb build/rootfs | cut -f1) bytes)"
