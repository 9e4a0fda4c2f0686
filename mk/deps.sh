#!/usr/bin/env bash
# mk/deps.sh - the Debian packages of mk/packages, the project's one dependency list.
#
#   mk/deps.sh GROUP...            make sure the packages a step needs are installed (make deps,
#                                  make demo, make test, ...). Steps: build (compile), test
#                                  (make test, make demo), bench, image, fuzz, fresh. test also
#                                  fetches the pinned kubectl builds (mk/kubectl.sh) and promtool
#                                  (mk/promtool.sh) into build/tools/. On Debian/Ubuntu missing
#                                  packages are named and installed with apt-get (as root, or
#                                  through sudo); elsewhere the script names them and stops.
#   mk/deps.sh --check GROUP...    installs nothing: exits 1 naming each pkg-config module of those
#                                  lines (lib, test) that pkg-config cannot find, with its Debian
#                                  package. `make` runs it before compiling.
#   mk/deps.sh --modules GROUP...  prints the pkg-config modules of those lines, one a line.
#   mk/deps.sh --list [--arch ARCH] GROUP...
#                                  prints the packages of those lines (the last of "a|b"), one a
#                                  line, with ":ARCH" appended when asked (the Containerfile).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list_file=$here/packages

# lines FIELD GROUP...: field 2 (package) or 3 (module) of the lines of those groups.
lines() {
    local field=$1; shift
    awk -v groups=" $* " -v f="$field" \
        '$1 !~ /^#/ && NF >= f && index(groups, " " $1 " ") { print $f }' "$list_file"
}

case "${1:-}" in
--modules)
    shift
    lines 3 "$@"
    exit 0
    ;;
--list)
    shift
    arch=""
    if [ "${1:-}" = --arch ]; then arch=":$2"; shift 2; fi
    lines 2 "$@" | sed "s/.*|//; s/\$/$arch/"
    exit 0
    ;;
--check)
    shift
    if ! command -v pkg-config >/dev/null 2>&1; then
        echo "topowire: pkg-config is not installed (Debian package pkg-config); make deps installs it" >&2
        exit 1
    fi
    missing="" pkgs=""
    while read -r _ pkg module; do
        [ -n "$module" ] || continue
        pkg-config --exists "$module" 2>/dev/null && continue
        missing="$missing
  $module (Debian package $pkg)"
        pkgs="$pkgs $pkg"
    done < <(awk -v groups=" $* " '$1 !~ /^#/ && NF >= 3 && index(groups, " " $1 " ")' "$list_file")
    [ -z "$missing" ] && exit 0
    cat >&2 <<MSG
topowire: pkg-config cannot find:$missing
On Debian, make deps installs what is missing (or: apt-get install$pkgs); then run make again.
MSG
    exit 1
    ;;
-*)
    echo "mk/deps.sh: unknown option '$1'" >&2
    exit 2
    ;;
esac

want=""
for g in "$@"; do
    case "$g" in
    build) want="$want $(lines 2 lib build)" ;;
    test) want="$want $(lines 2 lib build test fuzz)" ;;
    bench) want="$want $(lines 2 lib build test bench)" ;;
    # The arm64 image is cross-built against Debian's own arm64 libraries (multiarch).
    image) want="$want $(lines 2 lib build rootfs image) $(lines 2 lib | sed 's/$/:arm64/')" ;;
    fuzz) want="$want $(lines 2 lib build fuzz)" ;;
    fresh) want="$want $(lines 2 fresh)" ;;
    *) echo "mk/deps.sh: unknown group '$g'" >&2; exit 2 ;;
    esac
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=""
for spec in $want; do
    ok=0
    # "a|b": either package satisfies the need; the last is installed when neither is.
    IFS='|' read -r -a alts <<<"$spec"
    if command -v dpkg-query >/dev/null 2>&1; then
        for p in "${alts[@]}"; do
            if installed "$p"; then ok=1; break; fi
        done
    fi
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
            "$here/kubectl.sh" || echo "topowire: no pinned kubectl; the suites use the kubectl on PATH" >&2
            "$here/promtool.sh" || true
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
topowire needs these packages (Debian names, from mk/packages):$missing
On another distribution, install what provides them; for the libraries, the pkg-config modules
$(lines 3 lib test | xargs). Then run make again.
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
