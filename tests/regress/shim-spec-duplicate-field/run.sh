#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Replays the fuzzer's input (two keys naming one proto field) through the shim's config.json
# → Spec conversion; under ASan a leak or a double set fails the run.
. "$(dirname "$0")/../lib.sh"
H=$BUILD/tests/fuzz/fuzz_shim_bundle
[ -x "$H" ] || skip "$H not built"
"$H" "$HERE/config.json" || fail "fuzz_shim_bundle on config.json"
echo "ok - two keys naming one Spec field: refused without a leak"
