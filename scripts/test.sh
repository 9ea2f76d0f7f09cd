#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs every test suite twice: in the normal build and in the ASan+UBSan build. Prints one
# summary line at the end and exits non-zero when any test failed or a sanitizer reported.
set -u
BUILD=${1:-build}
ASAN_BUILD=${2:-build-asan}
cd "$(dirname "$0")/.."

run_suite() { # $1 build dir, $2 label, $3.. extra meson setup options
    dir=$1; label=$2; shift 2
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
    fi
    meson compile -C "$dir" >"$dir.compile.log" 2>&1 || { tail -50 "$dir.compile.log"; return 1; }
    meson test -C "$dir" --print-errorlogs --num-processes 2 >"$dir.test.log" 2>&1
    rc=$?
    grep -E '^ *[0-9]+/[0-9]+ ' "$dir.test.log" | sed "s/^/[$label] /"
    [ $rc -ne 0 ] && sed -n '/^--- /,$p' "$dir.test.log" | head -200
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir.test.log")
    fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$dir.test.log")
    skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$dir.test.log")
    to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$dir.test.log")
    summary="$summary $label: ${ok:-0} ok, ${fail:-0} failed, ${to:-0} timed out, ${skip:-0} skipped;"
    return $rc
}

summary=""
status=0
# Style: every C file as .clang-format lays it out (`make format` fixes it).
if ./scripts/format.sh --check; then
    summary=" format: ok;"
else
    summary=" format: FAILED;"
    status=1
fi
# No hidden tests: every test file is registered (and every registered file exists: meson fails).
./scripts/check-tests.sh || { summary="$summary tests-registered: FAILED;"; status=1; }
# The dependency rule (docs/architecture.md): a module includes only the modules below it.
./scripts/check-deps.py || { summary="$summary dependency-rule: FAILED;"; status=1; }
run_suite "$BUILD" normal --buildtype=debugoptimized || status=1
run_suite "$ASAN_BUILD" asan+ubsan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || status=1
if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$ASAN_BUILD"/meson-logs/testlog.txt >/dev/null 2>&1; then
    echo "sanitizer reports found in $ASAN_BUILD/meson-logs/testlog.txt"
    status=1
fi
if [ $status -eq 0 ]; then
    echo "make test: PASS —$summary"
else
    echo "make test: FAIL —$summary"
fi
exit $status
