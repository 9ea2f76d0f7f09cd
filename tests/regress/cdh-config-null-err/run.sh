#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/../lib.sh"
H=$BUILD/tests/fuzz/fuzz_cdh_config
built "$H"
# the replay driver takes a folder: the one input of this case
cp "$(dirname "$0")/input.toml" "$T/"
"$H" "$T" || fail "cl_cdh_config_parse with err = NULL crashed on input.toml"
echo "ok - a refused cdh.toml with no error record to fill returns instead of crashing"
