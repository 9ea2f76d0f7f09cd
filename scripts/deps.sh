#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian 12 package the build, the tests and the benchmarks need.
# Idempotent and quick when everything is present: it asks dpkg first and calls apt only for
# what is missing. Nothing else is downloaded.
set -eu

PKGS="
postgresql-15 postgresql-client-15 redis-server redis-tools libpq-dev libhiredis-dev
build-essential meson ninja-build pkg-config clang libclang-rt-14-dev llvm
libssl-dev openssl libjansson-dev libjose-dev jose libmicrohttpd-dev libcurl4-openssl-dev curl
libcmocka-dev libpcre2-dev libyaml-dev zlib1g-dev
ca-certificates python3 python3-cryptography procps psmisc
libprotobuf-c-dev protobuf-c-compiler libtss2-dev swtpm swtpm-tools tpm2-tools libcryptsetup-dev
libp11-kit-dev softhsm2 opensc libjemalloc-dev
libarchive-dev libzstd-dev libgpgme-dev gnupg docker-registry skopeo umoci apache2-utils jq
qemu-system-x86 qemu-utils containerd runc busybox-static cpio kmod iproute2 util-linux
systemd dpkg
"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi
