#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Malicious layers pushed to a real registry and pulled in both modes: "../" paths, absolute
# paths, symlinks that point out of the root (absolute and climbing) with files written
# through them, hard links to files outside, a whiteout naming the parent, device nodes, and
# a decompression bomb (capped). A folder next to the target holds a sentinel: after every
# pull it must be exactly as it was, and nothing may appear next to it.
. "$(dirname "$0")/image-lib.sh"

start_registry reg
mkdir -p "$T/work"
export OUTSIDE="$T/work/outside"
mkdir "$OUTSIDE"
echo keep > "$OUTSIDE/sentinel"
sum0=$(sha256sum "$OUTSIDE/sentinel")

check_outside() {
    [ "$(sha256sum "$OUTSIDE/sentinel")" = "$sum0" ] || fail "$1: the sentinel changed"
    [ "$(stat -c %h "$OUTSIDE/sentinel")" = 1 ] || fail "$1: the sentinel gained a hard link"
    [ "$(ls -A "$OUTSIDE")" = sentinel ] || fail "$1: something appeared outside: $(ls -A "$OUTSIDE")"
    for e in "$T"/work/*; do
        case "$(basename "$e")" in outside|root-*|store) ;; *) fail "$1: $(basename "$e") appeared next to the target" ;; esac
    done
    [ ! -e /tmp/escape-dotdot ] && [ ! -e /escape-dotdot ] && [ ! -e /tmp/outside/escape-symlink ] || fail "$1: escaped to /"
}

# case KIND WANT_RC [PATH that must exist inside the root afterwards]
run_case() {
    kind=$1; want=$2; inside=${3:-}
    rm -rf "$T/lay-$kind"
    make_image "$T/lay-$kind" x "$kind"
    push "oci:$T/lay-$kind:x" "$REG/mal/$kind:1"
    cloister_pull "$REG/mal/$kind:1" "$T/work/root-$kind" --flat --policy "$T/accept.json" --max-layer-bytes 67108864
    expect_rc "$want" "flat: $kind"
    if [ "$want" != 0 ]; then
        [ ! -e "$T/work/root-$kind" ] || fail "$kind: a refused layer left a rootfs"
    elif [ -n "$inside" ]; then
        [ -e "$T/work/root-$kind/$inside" ] || [ -L "$T/work/root-$kind/$inside" ] || fail "$kind: $inside not inside the root"
    fi
    rm -rf "$T/work/.root-$kind.pull"
    check_outside "$kind (flat)"
    cloister_pull "$REG/mal/$kind:1" "$T/work/store" --policy "$T/accept.json" --max-layer-bytes 67108864
    expect_rc "$want" "layered: $kind"
    find "$T/work/store/layers" -name '.tmp-*' | grep -q . && fail "$kind: staging folder left in the store"
    check_outside "$kind (layered)"
}

run_case mal-dotdot 3
run_case mal-abs 0 abs-inside
run_case mal-symlink-dir 0 "$OUTSIDE/escape-symlink"
run_case mal-symlink-rel 0 "$(echo "$OUTSIDE" | sed 's|^/||')/escape-rel"
run_case mal-hardlink 6
run_case mal-hardlink-dotdot 3
run_case mal-whiteout-parent 3
run_case mal-device 0 ok
[ ! -e "$T/work/root-mal-device/dev-null" ] && [ ! -e "$T/work/root-mal-device/dev-sda" ] || fail "device nodes were created"
grep -q 'skipped 2 device nodes' "$T/pull.out" || fail "skipped devices are not reported"
ok "device nodes skipped and reported"
run_case mal-bomb 8
grep -q 'decompresses to more than' "$T/pull.err" || fail "the bomb refusal does not name the cap"
echo "PASS image-malicious"
