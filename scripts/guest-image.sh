#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the Cloister guest image: a Debian cloud kernel and an initramfs holding busybox,
# runc, the Cloister guest daemons, the libraries they link and dlopen, and guest/ (init,
# configs, module list). Output in BUILD_DIR/guest: vmlinuz, initrd.img, runtime.toml,
# manifest.txt. Same inputs give the same bytes. docs/guest-image.md says what is inside.
set -eu

usage() {
    cat <<'EOF'
Usage: scripts/guest-image.sh [--out DIR] [--force] [--aa-toml FILE] [--cdh-toml FILE] BUILD_DIR

Builds BUILD_DIR/guest/{vmlinuz,initrd.img,runtime.toml,manifest.txt} from Debian packages
(linux-image-*-cloud-amd64 downloaded with apt-get into BUILD_DIR/guest-cache, unpacked, not
installed; busybox-static, runc, libseccomp and the daemons' libraries from this machine) and
the guest binaries in BUILD_DIR/src/cmd (cloister-aa, cloister-cdh; cloister-agent when built).
Does nothing when manifest.txt already lists the same inputs, unless --force.

  --out DIR     write the image to DIR instead of BUILD_DIR/guest (reproducibility checks)
  --force       rebuild even when the inputs have not changed
  --aa-toml FILE, --cdh-toml FILE
                the daemons' configuration in the image instead of guest/aa.toml and
                guest/cdh.toml (e.g. a test image whose cdh.toml names an insecure registry;
                use with --out so build/guest keeps the defaults)

Environment: SOURCE_DATE_EPOCH (file times in the archive; default: the time of the last commit
that changed guest/ or this script),
CLOISTER_GUEST_KERNEL (a linux-image-* package name, default: what linux-image-cloud-amd64
depends on), CLOISTER_GUEST_CACHE (download cache, default BUILD_DIR/guest-cache).
EOF
}

die() { echo "guest-image: $*" >&2; exit 1; }
say() { echo "guest-image: $*" >&2; }

out="" force=0 aa_toml="" cdh_toml=""
while [ $# -gt 0 ]; do
    case $1 in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --force) force=1; shift ;;
    --aa-toml) [ $# -ge 2 ] || die "--aa-toml needs a file"; aa_toml=$2; shift 2 ;;
    --cdh-toml) [ $# -ge 2 ] || die "--cdh-toml needs a file"; cdh_toml=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { usage >&2; exit 2; }

umask 022
export LC_ALL=C TZ=UTC
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd) || die "build directory $1 does not exist"
OUT=$(mkdir -p "${out:-$BUILD/guest}" && cd "${out:-$BUILD/guest}" && pwd)
CACHE=${CLOISTER_GUEST_CACHE:-$BUILD/guest-cache}
AA_TOML=${aa_toml:-$SRC/guest/aa.toml}
CDH_TOML=${cdh_toml:-$SRC/guest/cdh.toml}
[ -f "$AA_TOML" ] || die "aa.toml: $AA_TOML is not a file"
[ -f "$CDH_TOML" ] || die "cdh.toml: $CDH_TOML is not a file"
MULTIARCH=x86_64-linux-gnu
LIBDIR=/usr/lib/$MULTIARCH
for c in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip strip sha256sum ldd; do
    command -v $c >/dev/null 2>&1 || die "$c is not installed (packages: apt, dpkg, kmod, cpio, gzip, binutils)"
done
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    # the last change to the image's own sources: other commits do not move the file times
    SOURCE_DATE_EPOCH=$(git -C "$SRC" log -1 --format=%ct -- guest scripts/guest-image.sh 2>/dev/null || true)
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
fi

# Guest binaries: the daemons are required, the agent joins when it has been built.
BINS="cloister-aa cloister-cdh"
for b in $BINS; do
    [ -x "$BUILD/src/cmd/$b" ] || die "$BUILD/src/cmd/$b is not built (meson compile -C $BUILD)"
done
[ -x "$BUILD/src/cmd/cloister-agent" ] && BINS="$BINS cloister-agent"
# Host programs copied in, and the libraries opened with dlopen() at run time
# (src/net/lazy_*.c, src/tee/tpm/tss2_dl.c, src/cdh/cryptsetup_dl.c; tss2-tctildr itself
# opens the device TCTI for /dev/tpmrm0).
HOST_BINS="/bin/busybox /usr/sbin/runc"
DLOPEN="libcurl.so.4 libmicrohttpd.so.12 libtss2-esys.so.0 libtss2-mu.so.0 libtss2-tctildr.so.0
        libtss2-rc.so.0 libtss2-tcti-device.so.0 libcryptsetup.so.12"
# busybox applets the init scripts use (no getty, login or telnetd: no shell on the console)
APPLETS="sh cat cp echo grep ip kill ln mkdir mkfifo mknod modprobe mount basename dirname
         poweroff rm sleep switch_root sync umount"
for f in $HOST_BINS; do [ -x "$f" ] || die "$f is missing (packages busybox-static, runc)"; done
# gpgme (simple-signing verification in the image puller) runs gpgconf and gpg
for b in $BINS; do
    if ldd "$BUILD/src/cmd/$b" 2>/dev/null | grep -q 'libgpgme\.so'; then
        for f in /usr/bin/gpgconf /usr/bin/gpg; do
            [ -x "$f" ] || die "$b links gpgme, which runs $f: missing (packages gpgconf, gpg)"
        done
        HOST_BINS="$HOST_BINS /usr/bin/gpgconf /usr/bin/gpg"
        break
    fi
done
for l in $DLOPEN; do [ -e "$LIBDIR/$l" ] || die "$LIBDIR/$l is missing (see docs/guest-image.md, packages)"; done

# --- kernel: the versioned package the meta package depends on, unpacked ----------------
mkdir -p "$CACHE/debs"
kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1
}
kpkg=${CLOISTER_GUEST_KERNEL:-$(kernel_pkg)}
if [ -z "$kpkg" ] && ! ls "$CACHE"/debs/linux-image-[0-9]*-cloud-amd64_*.deb >/dev/null 2>&1; then
    # a fresh machine whose package lists were never fetched (scripts/deps.sh installs
    # without them when nothing is missing)
    say "kernel: apt-get update (apt-cache knows no linux-image-cloud-amd64)"
    apt-get update -q >&2 || die "kernel: apt-get update failed"
    kpkg=$(kernel_pkg)
fi
if [ -z "$kpkg" ]; then
    # offline: the newest kernel already in the cache
    kdeb=$(ls "$CACHE"/debs/linux-image-[0-9]*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$kdeb" ] || die "kernel: apt-cache knows no linux-image-cloud-amd64 and the cache is empty (apt-get update?)"
    kpkg=$(basename "$kdeb" | cut -d_ -f1)
fi
kdeb=$(ls "$CACHE/debs/${kpkg}"_*.deb 2>/dev/null | sort -V | tail -n 1)
if [ -z "$kdeb" ]; then
    say "kernel: apt-get download $kpkg"
    # apt checks the file against the signed archive index it downloaded
    (cd "$CACHE/debs" && apt-get download "$kpkg" 1>&2) || die "kernel: apt-get download $kpkg failed"
    kdeb=$(ls "$CACHE/debs/${kpkg}"_*.deb | sort -V | tail -n 1)
fi
KVER=${kpkg#linux-image-}
KROOT=$CACHE/kernel-$(basename "$kdeb" .deb)
if [ ! -f "$KROOT/.unpacked" ]; then
    rm -rf "$KROOT"
    dpkg-deb -x "$kdeb" "$KROOT" || die "kernel: dpkg-deb -x $kdeb failed"
    depmod -b "$KROOT" "$KVER" || die "kernel: depmod on $KROOT failed"
    touch "$KROOT/.unpacked"
fi
[ -f "$KROOT/boot/vmlinuz-$KVER" ] || die "kernel: $kdeb has no boot/vmlinuz-$KVER"

# --- the input list: every file that goes in, with its hash ------------------------------
# (computed before anything is built, so an unchanged image is not rebuilt)
STAGE=$(mktemp -d "$CACHE/stage.XXXXXX")
files="$STAGE.files"
trap 'rm -rf "$STAGE" "$STAGE".*' EXIT INT TERM
: >"$files"
add_closure() { # the ELF file and every library ldd lists for it
    echo "$1" >>"$files"
    if ldd "$1" 2>/dev/null | grep -q 'not found'; then
        die "$1 needs a library that is not installed: $(ldd "$1" | grep 'not found' | tr -s '\t ' ' ')"
    fi
    ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^\t\(\/[^ ]*\) .*/\1/p' >>"$files" || true
}
for b in $BINS; do add_closure "$BUILD/src/cmd/$b"; done
for b in $HOST_BINS; do add_closure "$b"; done
for l in $DLOPEN; do add_closure "$LIBDIR/$l"; done
if ldd /bin/busybox >/dev/null 2>&1; then die "/bin/busybox is not static (install busybox-static)"; fi
modules=$(sed -e 's/#.*//' -e '/^ *$/d' "$SRC/guest/modules")
for m in $modules; do
    deps=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m") || die "module $m: not in $kpkg"
    echo "$deps" | sed -n 's/^insmod \([^ ]*\).*/\1/p' >>"$files"
done
sort -u "$files" -o "$files"
manifest() {
    echo "kernel $(basename "$kdeb") $(sha256sum <"$kdeb" | cut -d' ' -f1)"
    echo "source_date_epoch $SOURCE_DATE_EPOCH"
    for f in "$SRC"/guest/* "$0"; do echo "$(sha256sum <"$f" | cut -d' ' -f1) guest-input $(basename "$f")"; done
    echo "$(sha256sum <"$AA_TOML" | cut -d' ' -f1) /etc/cloister/aa.toml"
    echo "$(sha256sum <"$CDH_TOML" | cut -d' ' -f1) /etc/cloister/cdh.toml"
    # paths under the build and cache folders are written relative: the bytes must not
    # depend on where the tree is
    while read -r f; do echo "$(sha256sum <"$f" | cut -d' ' -f1) $f"; done <"$files" |
        sed -e "s#$KROOT/#kernel:#" -e "s#$BUILD/#build:#"
}
manifest >"$STAGE.manifest"
if [ $force = 0 ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/runtime.toml" ] &&
    cmp -s "$STAGE.manifest" "$OUT/manifest.txt"; then
    rm -f "$STAGE.manifest"
    say "up to date: $OUT"
    exit 0
fi

# --- the root tree (merged /usr, as Debian) ---------------------------------------------
t0=$(date +%s.%N)
R=$STAGE/root
mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib/$MULTIARCH" "$R/usr/lib64" "$R/etc/cloister" \
    "$R/etc/ssl/certs" "$R/dev" "$R/proc" "$R/sys" "$R/run" "$R/tmp" "$R/root" "$R/var"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
ln -s usr/bin "$R/bin"
ln -s usr/sbin "$R/sbin"
ln -s usr/lib "$R/lib"
ln -s usr/lib64 "$R/lib64"
ln -s ../run "$R/var/run"

# a file from this machine at its own path (under /usr for merged-/usr paths), links kept
put() {
    src=$1
    real=$(readlink -f "$src")
    dst=$(echo "$real" | sed 's#^/\(lib\|lib64\|bin\|sbin\)/#/usr/\1/#')
    mkdir -p "$R$(dirname "$dst")"
    [ -e "$R$dst" ] || cp "$real" "$R$dst"
    # the name it was asked for (a soname link) points at the file
    name=$(dirname "$dst")/$(basename "$src")
    [ "$name" = "$dst" ] || [ -e "$R$name" ] || ln -s "$(basename "$dst")" "$R$name"
}
while read -r f; do
    case $f in
    "$BUILD"/src/cmd/*) strip --strip-all -o "$R/usr/bin/$(basename "$f")" "$f" ;;
    "$KROOT"/*)
        rel=${f#"$KROOT"}
        mkdir -p "$R/usr$(dirname "$rel")"
        cp "$f" "$R/usr$rel"
        ;;
    *) put "$f" ;;
    esac
done <"$files"
# the program interpreter at the path the ELF headers name
[ -e "$R/usr/lib64/ld-linux-x86-64.so.2" ] ||
    ln -s ../lib/$MULTIARCH/ld-linux-x86-64.so.2 "$R/usr/lib64/ld-linux-x86-64.so.2"
# /bin/busybox went to /usr/bin/busybox (merged /usr); applet links point at it
for a in $APPLETS; do ln -s busybox "$R/usr/bin/$a"; done

# modules: the copied subset with its own index
cp "$KROOT/lib/modules/$KVER/modules.builtin" "$KROOT/lib/modules/$KVER/modules.order" \
    "$KROOT/lib/modules/$KVER/modules.builtin.modinfo" "$R/usr/lib/modules/$KVER/"
depmod -b "$R" "$KVER" || die "depmod on the image's modules failed"

# init and configuration
install -m 0755 "$SRC/guest/init" "$R/init"
install -m 0755 "$SRC/guest/cloister-init" "$R/usr/sbin/cloister-init"
install -m 0644 "$AA_TOML" "$R/etc/cloister/aa.toml"
install -m 0644 "$CDH_TOML" "$R/etc/cloister/cdh.toml"
echo "$modules" >"$R/etc/cloister/modules"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$R/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$R/etc/hosts"
printf 'hosts: files dns\npasswd: files\ngroup: files\n' >"$R/etc/nsswitch.conf"
echo cloister-guest >"$R/etc/hostname"
: >"$R/etc/resolv.conf"
cp "$STAGE.manifest" "$R/etc/cloister/manifest.txt"

# --- archive: sorted names, fixed times and owners, no gzip name or time ----------------
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$R" && find . -mindepth 1 -print0 | sort -z |
    cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -n -9 >"$STAGE.initrd"
t1=$(date +%s.%N)

# --- outputs ------------------------------------------------------------------------------
cp "$KROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz.new"
mv "$STAGE.initrd" "$OUT/initrd.img"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
qemu=$(command -v qemu-system-x86_64 || echo /usr/bin/qemu-system-x86_64)
swtpm=$(command -v swtpm || echo /usr/bin/swtpm)
cat >"$OUT/runtime.toml" <<EOF
# Cloister VM runtime configuration, written by scripts/guest-image.sh (docs/guest-image.md).
[hypervisor]
path = "$qemu"
kernel = "$OUT/vmlinuz"
initrd = "$OUT/initrd.img"
# no_timer_check: on a loaded host a TCG guest can fail the IO-APIC timer check and panic
kernel_params = "console=ttyS0 quiet panic=-1 no_timer_check cloister.net=10.0.2.15/24,10.0.2.2"
machine = "q35"
vcpus = 1
memory_mib = 512
kvm = "auto"
# virtio-rng: the guest's getrandom() would otherwise wait seconds for entropy under TCG
extra_args = ["-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0"]

[agent]
channel = "serial"

[tpm]
enabled = true
swtpm = "$swtpm"
EOF
mv "$STAGE.manifest" "$OUT/manifest.txt"
say "kernel $KVER, $(echo "$BINS" | wc -w) guest binaries, $(echo "$modules" | wc -w) modules"
say "initrd.img $(wc -c <"$OUT/initrd.img") bytes, sha256 $(sha256sum <"$OUT/initrd.img" | cut -d' ' -f1)"
say "built in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s: $OUT"
