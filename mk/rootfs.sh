#!/usr/bin/env bash
# mk/rootfs.sh ARCH BINDIR ROOTFS - lay out one platform's image filesystem:
#   /usr/local/bin/topowire-{init,webhook}   the stripped programs of BINDIR
#   /usr/lib/TRIPLET/...                      exactly the shared objects they load (the DT_NEEDED
#                                             closure, read with readelf, never by running them)
#                                             and the dynamic loader, from Debian's ARCH packages
#   /var/lib/dpkg/status.d/PKG                each of those packages' dpkg status entry (what Trivy
#                                             and Grype read in distroless images)
#   /usr/share/doc/PKG/copyright              each package's licence, and the texts under
#                                             /usr/share/common-licenses those files refer to
#   /usr/share/doc/topowire/LICENSE           topowire's own licence
#   /usr/share/doc/topowire/topowire.spdx.json  the SPDX 2.3 SBOM (mk/sbom.py)
#   /etc/passwd, /etc/group, /etc/os-release  the non-root user 65532; ID=debian VERSION_ID=12
# ARCH is a Debian architecture (amd64, arm64); its libraries must be installed (multiarch).
# Environment: SOURCE_DATE_EPOCH, TW_COMMIT (written into the SBOM).
set -euo pipefail
arch=$1 bindir=$2 root=$3
here=$(cd "$(dirname "$0")" && pwd)
triplet=$(dpkg-architecture -a"$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
strip="strip"
[ "$arch" = "$(dpkg --print-architecture)" ] || strip=$triplet-strip
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/usr/lib/$triplet" "$root/etc" "$root/tmp" \
    "$root/var/lib/dpkg/status.d" "$root/usr/share/doc/topowire"
chmod 1777 "$root/tmp"
progs=()
for p in topowire-init topowire-webhook; do
    [ -x "$bindir/$p" ] || continue
    "$strip" -o "$root/usr/local/bin/$p" "$bindir/$p"
    progs+=("$root/usr/local/bin/$p")
done
[ ${#progs[@]} -gt 0 ] || { echo "mk/rootfs.sh: no programs in $bindir" >&2; exit 1; }

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# find_lib SONAME: the host's file for ARCH, under the multiarch directories.
find_lib() {
    local d
    for d in "/usr/lib/$triplet" "/lib/$triplet"; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    echo "mk/rootfs.sh: $1 for $arch not found (install its $arch package)" >&2
    return 1
}

# owner PATH: the package:arch that installed PATH (dpkg knows /lib and /usr/lib paths apart).
owner() {
    local p alt
    for p in "$1" "$(readlink -f "$1")"; do
        for alt in "$p" "${p#/usr}" "/usr$p"; do
            dpkg-query -S "$alt" 2>/dev/null | grep -v '^diversion' | sed -n '1s/: .*//p' | grep . && return 0
        done
    done
    echo "mk/rootfs.sh: no Debian package owns $1" >&2
    return 1
}

# The DT_NEEDED closure, breadth first, each object copied as its real file plus the soname link.
declare -A seen=()
queue=()
for p in "${progs[@]}"; do mapfile -t -O "${#queue[@]}" queue < <(needed "$p"); done
pkgs=()
while [ ${#queue[@]} -gt 0 ]; do
    so=${queue[0]}
    queue=("${queue[@]:1}")
    [ -n "${seen[$so]:-}" ] && continue
    seen[$so]=1
    src=$(find_lib "$so")
    real=$(readlink -f "$src")
    cp "$real" "$root/usr/lib/$triplet/$(basename "$real")"
    [ "$(basename "$real")" = "$so" ] || ln -s "$(basename "$real")" "$root/usr/lib/$triplet/$so"
    pkgs+=("$(owner "$src")")
    mapfile -t -O "${#queue[@]}" queue < <(needed "$real")
done

# The loader at the path the programs ask for, merged-/usr style with relative links (so that
# `qemu-aarch64-static -L ROOTFS` and a container runtime resolve it inside ROOTFS alike).
interp=$(readelf -l "${progs[0]}" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
[ -e "$root/usr/lib/$triplet/$(basename "$interp")" ] ||
    { echo "mk/rootfs.sh: the loader $interp is not among the shared objects" >&2; exit 1; }
case $interp in
/lib/*) ;;
/lib64/*) mkdir -p "$root/usr/lib64" && ln -s usr/lib64 "$root/lib64" ;;
*) echo "mk/rootfs.sh: unexpected loader path $interp" >&2; exit 1 ;;
esac
ln -s usr/lib "$root/lib"
ln -sr "$root/usr/lib/$triplet/$(basename "$interp")" "$root/usr${interp}"

# Licences and dpkg status entries. Copyright files that refer to a text in
# /usr/share/common-licenses get that text too; it belongs to base-files (of the build machine's
# architecture: the texts are the same on every architecture).
licence_texts=$(for p in "${pkgs[@]}"; do
    grep -ho '/usr/share/common-licenses/[A-Za-z0-9.+_-]*[A-Za-z0-9]' "/usr/share/doc/${p%%:*}/copyright" || true
done | sort -u)
if [ -n "$licence_texts" ]; then
    mkdir -p "$root/usr/share/common-licenses"
    for t in $licence_texts; do
        [ -e "$t" ] && cp "$(readlink -f "$t")" "$root$t"
    done
    pkgs+=("$(owner /usr/share/common-licenses/GPL-3)")
fi
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
for pa in "${pkgs[@]}"; do
    p=${pa%%:*}
    mkdir -p "$root/usr/share/doc/$p"
    cp "$(readlink -f "/usr/share/doc/$p/copyright")" "$root/usr/share/doc/$p/copyright"
    # The installed package's own status entry; a trailing blank line as in dpkg's status file.
    { dpkg-query -s "$pa"; echo; } >"$root/var/lib/dpkg/status.d/$p"
done

cp "$here/../LICENSE" "$root/usr/share/doc/topowire/LICENSE"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
# What scanners use to tell the distribution (the libraries are Debian 12's), as distroless does.
# shellcheck disable=SC1091
. /etc/os-release
cat >"$root/etc/os-release" <<EOF
PRETTY_NAME="topowire ($PRETTY_NAME libraries)"
NAME="$NAME"
ID=$ID
VERSION_ID="$VERSION_ID"
VERSION="$VERSION"
VERSION_CODENAME=$VERSION_CODENAME
HOME_URL="https://github.com/topowire/topowire"
EOF
mkdir -p "$root/etc/topowire" "$root/etc/podinfo"
# mk/oci.py sets this owner in the layer itself; a Containerfile COPY keeps the tree's own.
chown 65532:65532 "$root/etc/topowire" 2>/dev/null || true
/usr/bin/python3 "$here/sbom.py" --arch "$arch" --status-dir "$root/var/lib/dpkg/status.d" \
    --version "$(cat "$here/../VERSION")" --commit "${TW_COMMIT:-unknown}" \
    --created "${SOURCE_DATE_EPOCH:-0}" --out "$root/usr/share/doc/topowire/topowire.spdx.json"
