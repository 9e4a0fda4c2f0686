#!/usr/bin/env bash
# mk/rootfs.sh BINDIR ROOTFS - lay out the container image's filesystem: the
# stripped programs in /usr/local/bin, exactly the shared objects they load
# (as ldd lists them, and the dynamic loader), a passwd/group naming the
# non-root user 65532, and nothing else.
set -euo pipefail
bindir=$1 root=$2
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
progs=()
for p in topowire-init topowire-webhook; do
    [ -x "$bindir/$p" ] || continue
    strip -o "$root/usr/local/bin/$p" "$bindir/$p"
    progs+=("$bindir/$p")
done
[ ${#progs[@]} -gt 0 ] || { echo "mk/rootfs.sh: no programs in $bindir" >&2; exit 1; }
# Every object ldd resolves, copied to the same path (and the path it links to).
ldd "${progs[@]}" | awk '/=> \//{print $3} /^[[:space:]]*\/.*ld-linux/{print $1}' | sort -u |
while read -r lib; do
    real=$(readlink -f "$lib")
    mkdir -p "$root$(dirname "$lib")" "$root$(dirname "$real")"
    cp -n "$real" "$root$real"
    [ "$lib" != "$real" ] && ln -sf "$real" "$root$lib"
done
# Debian's loader is found at /lib64 through a symlink; make /lib and /lib64 real.
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
mkdir -p "$root/etc/topowire" "$root/etc/podinfo"
chown 65532:65532 "$root/etc/topowire" 2>/dev/null || true
