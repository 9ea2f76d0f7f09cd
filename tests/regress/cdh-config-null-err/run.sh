#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
set -eu
SRC=${CLOISTER_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
BUILD=${CLOISTER_BUILD:-$SRC/build}
H=$BUILD/tests/fuzz/fuzz_cdh_config
[ -x "$H" ] || { echo "FAIL: $H not built"; exit 1; }
# the replay driver takes a folder: the one input of this case
T=$(mktemp -d /tmp/cloister-regress.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
cp "$(dirname "$0")/input.toml" "$T/"
"$H" "$T" || { echo "FAIL: cl_cdh_config_parse with err = NULL crashed on input.toml"; exit 1; }
echo "ok - a refused cdh.toml with no error record to fill returns instead of crashing"
