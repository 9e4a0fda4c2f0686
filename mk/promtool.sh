#!/usr/bin/env bash
# mk/promtool.sh - put promtool into build/tools/bin/ for the monitoring suite.
#
# promtool ships only inside Debian's `prometheus` package, whose install would
# also enable a Prometheus server (on :9090) wherever systemd runs. So this
# takes the package with `apt-get download` (apt checks it against the signed
# archive index) and unpacks just /usr/bin/promtool, which needs only libc.
# A promtool already on PATH is used as it is. Exits 0 when one is available.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=build/tools
say() { echo "topowire: $*" >&2; }

command -v promtool >/dev/null 2>&1 && exit 0
[ -x "$tools/bin/promtool" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    say "promtool is missing: install it (Debian/Ubuntu package prometheus, or a Prometheus release)"
    exit 1
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tw-promtool-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
say "fetching promtool (Debian package prometheus, unpacked into $tools/bin; no service installed)"
if ! (cd "$scratch" && apt-get download -q prometheus >/dev/null 2>&1); then
    # The package lists may be missing on a fresh machine.
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$scratch" && apt-get download -q prometheus >/dev/null) || { say "apt-get download prometheus failed"; exit 1; }
fi
dpkg-deb -x "$scratch"/prometheus_*.deb "$scratch/root"
mkdir -p "$tools/bin"
install -m 755 "$scratch/root/usr/bin/promtool" "$tools/bin/promtool"
