#!/usr/bin/env bash
# tests/fresh-machine.sh - the README's two commands on a brand-new Debian
# bookworm root, as a new user would type them (`make fresh`).
#
# Builds a minimal root with debootstrap (--variant=minbase), installs only
# what a user needs to get the tree (git, make, ca-certificates), clones the
# committed HEAD into it, runs `make demo` and `make test` there, and prints
# make test's summary line. Everything else must come from the project's own
# files (mk/deps.sh): a tool this machine happens to carry is not there.
#
# Needs root (debootstrap, mount, chroot) and Debian's package mirror.
# The pristine root is cached as build/fresh/bookworm-minbase.tar.gz (nothing
# of the project's is in it); TW_FRESH_CLEAN=1 makes it again. The full log is
# build/fresh/fresh.log. Exit status: make test's (2: could not set up).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$top/build/fresh
root=$work/root
base=$work/bookworm-minbase.tar.gz
log=$work/fresh.log

say() { echo "fresh: $*" >&2; }
if [ "$(id -u)" != 0 ]; then
    say "needs root (debootstrap, mount and chroot)"
    exit 2
fi
mk/deps.sh fresh

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
mnt() { # mount ARGS... TARGET
    mount "$@"
    mounted+=("${!#}")
}

mkdir -p "$work"
if [ ! -s "$base" ] || [ "${TW_FRESH_CLEAN:-0}" = 1 ]; then
    say "debootstrap --variant=minbase bookworm (a few minutes)"
    rm -rf "$work/bootstrap"
    debootstrap --variant=minbase bookworm "$work/bootstrap" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; exit 2; }
    tar -C "$work/bootstrap" -czf "$base.tmp" . && mv "$base.tmp" "$base"
    rm -rf "$work/bootstrap"
fi
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xzf "$base"

# buildah and podman inside need / to be a mount point, and proc, sys (with
# its cgroup mounts) and dev.
mnt --bind "$root" "$root"
mnt -t proc proc "$root/proc"
# /sys with its submounts: runc needs the cgroup filesystem under /sys/fs/cgroup.
mnt --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mnt --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine's network as a user's machine beside it would have it: local
# trust anchors (a proxy's CA, say) and the variables that point tools at
# them or at a proxy. Nothing of the project's; none of it where there is none.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
netenv=()
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
    [ -n "${!v:-}" ] && netenv+=("$v=${!v}")
done

# The committed tree, as a clone would get it (uncommitted changes are not in it).
git bundle create -q "$root/root/topowire.bundle" HEAD
say "commit $(git rev-parse --short HEAD); log: $log"

set +e
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${netenv[@]}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c '
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends git make ca-certificates >/dev/null
update-ca-certificates >/dev/null 2>&1 || true
git clone -q /root/topowire.bundle /root/topowire
cd /root/topowire
echo "== make demo"
make demo
echo "== make test"
make test' >"$log" 2>&1
rc=$?
set -e
grep -E '^(fresh|==)' "$log" >&2 || true
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
if [ -z "$summary" ]; then
    say "no summary line; the end of the log:"
    tail -n 40 "$log" >&2
    exit $((rc == 0 ? 2 : rc))
fi
sed -n '/^skipped, each with its reason:/,/^[0-9]* passed/p;/^failures:/,/^[0-9]* passed/p' "$log" | grep -v '^[0-9]* passed' >&2 || true
echo "$summary"
exit $rc
