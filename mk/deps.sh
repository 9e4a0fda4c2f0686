#!/usr/bin/env bash
# mk/deps.sh GROUP... - make sure the Debian packages a step needs are installed.
# Groups: build (compile), test (make test, make demo), bench (make bench),
# image (make image), fuzz (make fuzz), fresh (make fresh); test also fetches the pinned kubectl
# builds (mk/kubectl.sh) and promtool (mk/promtool.sh) into build/tools/. On Debian/Ubuntu missing packages are
# installed with apt-get (as root, or through sudo) and named first; elsewhere
# the script names the packages and stops.
set -euo pipefail

build_pkgs="gcc make pkg-config libc6-dev libcurl4-openssl-dev libcjson-dev libssl-dev
 libmicrohttpd-dev libgnutls28-dev libyaml-dev"
# One package a line below keeps merges of new needs simple.
test_pkgs="
 libcmocka-dev
 openssl
 curl
 jq
 valgrind
 python3
 python3-yaml
 python3-jsonschema
 busybox
 kcat
 kubectl|kubernetes-client
 npm
 clang-format
 cppcheck
 clang-tidy
"
bench_pkgs="hyperfine time wrk nginx-light curl jq"
image_pkgs="buildah podman runc skopeo uidmap python3 dpkg-dev docker-registry qemu-user-static crossbuild-essential-arm64
 libc6-dev:arm64 libcurl4-openssl-dev:arm64 libcjson-dev:arm64 libssl-dev:arm64 libmicrohttpd-dev:arm64
 libgnutls28-dev:arm64 libyaml-dev:arm64"
fuzz_pkgs="clang libclang-rt-14-dev"
fresh_pkgs="debootstrap git"

want=""
for g in "$@"; do
    case "$g" in
    build) want="$want $build_pkgs" ;;
    test) want="$want $build_pkgs $test_pkgs $fuzz_pkgs" ;;
    bench) want="$want $build_pkgs $test_pkgs $bench_pkgs" ;;
    image) want="$want $build_pkgs $image_pkgs" ;;
    fuzz) want="$want $build_pkgs $fuzz_pkgs" ;;
    fresh) want="$want $fresh_pkgs" ;;
    *) echo "mk/deps.sh: unknown group '$g'" >&2; exit 2 ;;
    esac
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=""
for spec in $want; do
    ok=0
    # "a|b": either package satisfies the need; the first is installed when neither is.
    IFS='|' read -r -a alts <<<"$spec"
    for p in "${alts[@]}"; do
        if installed "$p"; then ok=1; break; fi
    done
    # A program installed outside Debian's packages serves as well.
    case "$spec" in kubectl* | npm) command -v "${alts[0]}" >/dev/null 2>&1 && ok=1 ;; esac
    if [ $ok = 0 ]; then
        case " $missing " in *" ${alts[-1]} "*) ;; *) missing="$missing ${alts[-1]}" ;; esac
    fi
done
# After the packages: the pinned kubectl builds the suites use (mk/kubectl.sh).
tools() {
    local w
    for w in $want; do
        if [ "$w" = npm ]; then
            "$(dirname "$0")/kubectl.sh" || echo "topowire: no pinned kubectl; the suites use the kubectl on PATH" >&2
            "$(dirname "$0")/promtool.sh" || true
            return 0
        fi
    done
}
if [ -z "$missing" ]; then
    tools
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    cat >&2 <<MSG
topowire needs these packages (Debian names):$missing
On Fedora/RHEL: gcc make pkgconf libcurl-devel cjson-devel openssl-devel libmicrohttpd-devel gnutls-devel
  libyaml-devel libcmocka-devel jq valgrind python3-pyyaml python3-jsonschema kcat kubectl
On Alpine: build-base pkgconf curl-dev cjson-dev openssl-dev libmicrohttpd-dev gnutls-dev yaml-dev
  cmocka-dev jq valgrind python3-pyyaml python3-jsonschema kcat kubectl
Install them and run make again.
MSG
    exit 1
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "topowire: missing packages:$missing - run as root or install them: apt-get install$missing" >&2
        exit 1
    fi
fi
echo "topowire: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# The arm64 image is cross-built against Debian's own arm64 packages (multiarch).
case "$missing" in *:arm64*)
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64 ;;
esac
# The package lists may be absent on a fresh machine; refresh them once.
# Another apt-get may hold the lists lock: wait for it (up to 10 minutes), but not for a network error.
for try in $(seq 60); do
    err=$($sudo apt-get -o DPkg::Lock::Timeout=600 update -qq 2>&1 >/dev/null) && break
    case "$err" in *lock*) [ "$try" -lt 60 ] && { sleep 10; continue; } ;; esac
    echo "topowire: apt-get update failed; trying the install anyway" >&2
    break
done
# shellcheck disable=SC2086
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
echo "topowire: installed:$missing" >&2
tools
