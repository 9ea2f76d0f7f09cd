#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The layer of the report: GNU tar reads one 767-byte file `f`; Cloister's reader must read the
# same or refuse, never `f` of 512 bytes plus a symlink `hidden -> /etc/shadow`. Then every
# neighbouring stream of craft.py goes through fuzz_tar_diff (Cloister against libarchive).
. "$(dirname "$0")/../lib.sh"
DIFF=$BUILD/tests/fuzz/fuzz_tar_diff
[ -x "$DIFF" ] || skip "fuzz_tar_diff not built (libarchive-dev missing)"
command -v tar >/dev/null 2>&1 || skip "GNU tar missing"

python3 "$HERE/craft.py" "$T/cases"
layer=$T/cases/gnu-k-4097-size-smuggle
# the independent reader: one regular file f of 767 bytes, nothing else
listing=$(tar -tvf "$layer" 2>&1) || fail "GNU tar refused the layer: $listing"
[ "$(printf '%s\n' "$listing" | wc -l)" -eq 1 ] || fail "GNU tar lists: $listing"
printf '%s\n' "$listing" | grep -Eq '^-.* 767 .* f$' || fail "GNU tar lists: $listing"

# Cloister: the same entries as libarchive, or a refusal (fuzz_tar_diff aborts otherwise)
out=$(CL_TAR_DIFF_VERBOSE=1 "$DIFF" "$layer" 2>&1) || fail "readers disagree: $out"
printf '%s\n' "$out" | grep -q 'hidden' && fail "Cloister still lists the hidden symlink: $out"
printf '%s\n' "$out" | grep -Eq '^  0 f size 767 read 767' || fail "Cloister's listing: $out"

out=$("$DIFF" "$T/cases" 2>&1) || fail "readers disagree on a neighbouring stream: $out"
echo PASS
