#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Reproducible-build check: builds Cloister's six programs twice from one commit, in two clones
# at different absolute paths (different lengths too), and compares their SHA-256. Exit 0 when
# every program is identical, 1 naming each that differs (with the first differing bytes).
# What keeps them identical: -ffile-prefix-map (meson.build) keeps the trees' paths out of
# debug info and __FILE__; kbs_build_info's date is the commit's (src/kbs/cl_build_date.h.in),
# not __DATE__; the version is `git describe` of the commit; meson's static archives are
# deterministic (ar D); the GNU build-id is a hash of the rest, so it follows.
# Usage: scripts/repro.sh [REV]        (default HEAD: committed work only)
# Env: REPRO_BUILDTYPE (default debugoptimized, the shipped and tested build), REPRO_KEEP=1 keeps the trees, MESON, NINJA.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
rev=$(git -C "$here" rev-parse --verify "${1:-HEAD}^{commit}") || { echo "repro: no commit '${1:-HEAD}'" >&2; exit 2; }
buildtype=${REPRO_BUILDTYPE:-debugoptimized}
MESON=${MESON:-meson}
NINJA=${NINJA:-ninja}
progs="cloister cloister-kbs cloister-aa cloister-cdh cloister-agent containerd-shim-cloister-v2"
tmp=$(mktemp -d /tmp/cloister-repro.XXXXXX)
[ "${REPRO_KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT INT TERM
A=$tmp/a/cloister
B=$tmp/second-tree/deeper/cloister-copy

build() { # build TREE: clone the commit, configure, build the programs only
    git clone -q --no-checkout "$here" "$1"
    git -C "$1" checkout -q --detach "$rev"
    $MESON setup "$1/build" "$1" --buildtype="$buildtype" >"$1.setup.log" 2>&1 ||
        { tail -20 "$1.setup.log" >&2; exit 1; }
    t0=$(date +%s)
    targets=""
    for p in $progs; do targets="$targets src/cmd/$p"; done
    $NINJA -C "$1/build" $targets >"$1.build.log" 2>&1 || { tail -20 "$1.build.log" >&2; exit 1; }
    echo "repro: built $rev in $1 ($buildtype): $(($(date +%s) - t0)) s"
}

start=$(date +%s)
build "$A"
build "$B"
bad=0
for p in $progs; do
    a=$(sha256sum "$A/build/src/cmd/$p" | cut -d' ' -f1)
    b=$(sha256sum "$B/build/src/cmd/$p" | cut -d' ' -f1)
    if [ "$a" = "$b" ]; then
        echo "same    $a  $p"
    else
        echo "DIFFERS $a $b  $p (first differing bytes: $(cmp "$A/build/src/cmd/$p" "$B/build/src/cmd/$p" | head -1))"
        bad=$((bad + 1))
    fi
done
echo "repro: $(git -C "$here" describe --tags --always "$rev"), $buildtype, two trees, $(($(date +%s) - start)) s in all: $((6 - bad)) of 6 programs identical"
[ "${REPRO_KEEP:-0}" = 1 ] && echo "repro: trees kept in $tmp"
[ $bad = 0 ]
