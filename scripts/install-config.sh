#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# meson install script (meson.build): copies each example configuration from EXAMPLES_DIR to
# CONF_DIR unless a file of that name is already there, so a first install gives the units the
# files they name and an upgrade never replaces the operator's configuration.
# Usage (by meson): install-config.sh EXAMPLES_DIR CONF_DIR FILE...
# Folders relative to the prefix are taken from $MESON_INSTALL_PREFIX; $DESTDIR is honoured.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 EXAMPLES_DIR CONF_DIR FILE..." >&2; exit 2; }
prefix=${MESON_INSTALL_PREFIX:?run by meson install}
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$prefix" "$1" ;; esac; }
src=${DESTDIR:-}$(abs "$1")
dst=${DESTDIR:-}$(abs "$2")
shift 2
if [ -n "${MESON_INSTALL_DRY_RUN:-}" ]; then
    echo "would seed $dst from $src (files not already there): $*"
    exit 0
fi
mkdir -p "$dst"
for f in "$@"; do
    if [ -e "$dst/$f" ]; then
        echo "Keeping $dst/$f (the example is $src/$f)"
    else
        install -m 0644 "$src/$f" "$dst/$f"
        echo "Installing $dst/$f (from the example)"
    fi
done
