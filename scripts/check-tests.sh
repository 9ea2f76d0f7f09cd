#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# No hidden tests: every test file in the tree is registered in its meson.build (the meson lists
# themselves fail the build when a listed file is missing). Prints each orphan; exits 1 if any.
set -u
cd "$(dirname "$0")/../tests"
bad=0
orphan() { echo "check-tests: $1 is not registered in $2"; bad=1; }
for f in unit/test_*.c; do
    n=$(basename "$f" .c)
    grep -q "'$n'" unit/meson.build || orphan "$f" unit/meson.build
done
for f in integration/*.sh; do
    n=$(basename "$f" .sh)
    case $n in lib | *-lib) continue ;; esac
    grep -q "'$n'" integration/meson.build || orphan "$f" integration/meson.build
done
for f in fuzz/fuzz_*.c; do
    n=$(basename "$f" .c); n=${n#fuzz_}
    grep -q "'$n'" fuzz/meson.build || orphan "$f" fuzz/meson.build
    [ -d "fuzz/corpus/$n" ] || { echo "check-tests: $f has no corpus fuzz/corpus/$n"; bad=1; }
done
for d in regress/*/; do
    n=$(basename "$d")
    grep -q "'$n'" regress/meson.build || orphan "$d" regress/meson.build
done
for f in conformance/run_*.c; do
    n=$(basename "$f" .c); n=${n#run_}
    grep -q "'$n'" conformance/meson.build || orphan "$f" conformance/meson.build
done
exit $bad
