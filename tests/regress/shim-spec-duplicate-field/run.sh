#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Replays the fuzzer's input (two keys naming one proto field) through the shim's config.json
# → Spec conversion; under ASan a leak or a double set fails the run.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${CLOISTER_BUILD:-$HERE/../../../build}
H=$BUILD/tests/fuzz/fuzz_shim_bundle
[ -x "$H" ] || { echo "SKIP: $H not built"; exit 77; }
"$H" "$HERE/config.json" || { echo "FAIL: fuzz_shim_bundle on config.json"; exit 1; }
echo "ok - two keys naming one Spec field: refused without a leak"
