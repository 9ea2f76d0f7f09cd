#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# With no --max-layer-bytes, a decompression bomb (128 MiB of zeros, ~130 KiB compressed) pulled
# into a 32 MiB tmpfs is refused by the decompression cap (exit 8, "decompresses to more
# than"), not by the disk running full; a layer that fits is pulled into the same tmpfs.
REGRESS_WITH=image
. "$(dirname "$0")/../lib.sh"
mkdir -p "$T/small"
mount -t tmpfs -o size=32m tmpfs "$T/small" 2>/dev/null || skip "cannot mount a tmpfs here"
trap 'umount "$T/small" 2>/dev/null; cleanup' EXIT INT TERM
start_registry reg
make_image "$T/lay-bomb" x mal-bomb
push "oci:$T/lay-bomb:x" "$REG/cap/bomb:1"
cloister_pull "$REG/cap/bomb:1" "$T/small/root" --flat --policy "$T/accept.json"
expect_rc 8 "a 128 MiB layer into a 32 MiB tmpfs, default cap"
grep -q 'decompresses to more than' "$T/pull.err" || fail "refused, but not by the cap: $(cat "$T/pull.err")"
[ ! -e "$T/small/root" ] || fail "a refused layer left a rootfs"
make_image "$T/lay-ok" x base
push "oci:$T/lay-ok:x" "$REG/cap/ok:1"
cloister_pull "$REG/cap/ok:1" "$T/small/root" --flat --policy "$T/accept.json"
expect_rc 0 "a small image into the same tmpfs"
echo PASS
