#!/usr/bin/env bash
# tests/lint.sh - `make lint`: static checks over the C sources, one TAP line
# each: clang-format (the repo's .clang-format), banned calls, cppcheck and
# clang-tidy (the checks chosen in .clang-tidy). Counts go to $TW_RESULTS when
# run from tests/run-all.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)
mapfile -t cfiles < <(printf '%s\n' "${files[@]}" | grep '\.c$' | grep -v '^fuzz/')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0; failed=0
result() { # rc description
    if [ "$1" -eq 0 ]; then echo "ok - lint: $2"; passed=$((passed + 1));
    else echo "not ok - lint: $2"; failed=$((failed + 1)); sed 's/^/    /' "$log" | head -40
        [ -n "${TW_RESULTS:-}" ] && echo "lint: $2" >>"$TW_RESULTS/failures-lint"; fi
}

clang-format --dry-run -Werror "${files[@]}" >"$log" 2>&1
result $? "clang-format"

grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' "${files[@]}" >"$log" 2>&1
[ -s "$log" ]; result $((1 - $?)) "no banned calls (strcpy strcat sprintf vsprintf gets strtok)"

# One dependency list: the command README.md shows installs exactly the lib and build lines of
# mk/packages.
shown=$(sed -n '/^<!-- the lib and build lines of mk\/packages/,/^```$/p' README.md | grep '^apt-get install ')
listed="apt-get install $(mk/deps.sh --list lib build | xargs)"
if [ "$shown" = "$listed" ]; then : >"$log"; else
    printf 'README.md shows:   %s\nmk/packages gives: %s\n' "${shown:-(no such line)}" "$listed" >"$log"; fi
[ "$shown" = "$listed" ]; result $? "README.md shows the packages of mk/packages"

flags=(-std=c11 -D_GNU_SOURCE -Iinclude -Itests/unit $(pkg-config --cflags-only-I $(mk/deps.sh --modules lib test) 2>/dev/null))
cppcheck -q --error-exitcode=1 --enable=warning,portability,performance --inline-suppr \
    --std=c11 -D_GNU_SOURCE -DTW_VERSION='"lint"' -Iinclude -Itests/unit \
    --suppress=missingIncludeSystem --suppress=unknownMacro --suppress=varFuncNullUB -j "$(nproc)" "${cfiles[@]}" >"$log" 2>&1
result $? "cppcheck"

export TIDY_FLAGS="${flags[*]} -DTW_VERSION=\"lint\""
printf '%s\n' "${cfiles[@]}" | xargs -P "$(nproc)" -I{} sh -c 'clang-tidy --quiet "$1" -- $TIDY_FLAGS 2>&1 | grep -v "warnings generated" ; exit "${PIPESTATUS:-0}"' _ {} >"$log" 2>&1
! grep -q 'error:' "$log"
result $? "clang-tidy"

echo "$passed passed, $failed failed (lint)"
[ -n "${TW_RESULTS:-}" ] && echo "$passed $failed" >"$TW_RESULTS/count-lint"
[ "$failed" -eq 0 ]
