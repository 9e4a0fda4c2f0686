#!/usr/bin/env bash
# mk/image-arch.sh ARCH WORKDIR - one platform of the image: compile the programs for the
# Debian architecture ARCH into WORKDIR/obj and WORKDIR/bin (natively, or with Debian's
# TRIPLET-gcc cross compiler against the multiarch ARCH packages), then lay out
# WORKDIR/rootfs with mk/rootfs.sh. Used by mk/image.sh for each platform and by the
# Containerfile's build stage for TARGETARCH.
set -euo pipefail
arch=$1 work=$2
cd "$(dirname "$0")/.."
triplet=$(dpkg-architecture -a"$arch" -qDEB_HOST_MULTIARCH 2>/dev/null) ||
    { echo "mk/image-arch.sh: unknown architecture $arch (is dpkg-dev installed?)" >&2; exit 1; }
tool=(CC=cc AR=ar)
env=()
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    command -v "$triplet-gcc" >/dev/null ||
        { echo "mk/image-arch.sh: no $triplet-gcc: run mk/deps.sh image" >&2; exit 1; }
    tool=(CC="$triplet-gcc" AR="$triplet-ar")
    env=(PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig")
fi
env "${env[@]}" make -s -j"$(nproc)" programs "${tool[@]}" OBJDIR="$work/obj" BINDIR="$work/bin"
mk/rootfs.sh "$arch" "$work/bin" "$work/rootfs"
