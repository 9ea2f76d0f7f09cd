#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Lays out every tracked C file with clang-format and .clang-format.
#   scripts/format.sh          rewrite the files in place
#   scripts/format.sh --check  change nothing; list each file that differs and exit 1
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 2>/dev/null)
[ -n "$files" ] || files=$(find src tests bench -name '*.[ch]' | sort)
if [ "${1:-}" = "--check" ]; then
    # One clang-format process for all files; it names each place that differs.
    out=$(clang-format --dry-run --Werror $files 2>&1) && exit 0
    echo "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error.*/\1/p' | sort -u |
        sed 's/$/ differs from .clang-format (run: make format)/; s/^/format: /'
    exit 1
fi
exec clang-format -i $files
