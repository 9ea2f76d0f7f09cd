#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `meson install --destdir` of the test build: the programs, units, policies and example
# configurations land where docs/install.md says; every path each installed unit names exists
# in the install (unit_paths.py) and `systemd-analyze verify` accepts the units when systemd is
# installed; a second configuration with --prefix /usr names /usr/bin and /etc paths that the
# same layout provides; the KBS example configuration passes `--check` with real keys in the
# credential names. Twins: a unit naming a missing program fails both checks; a missing
# credential fails --check naming the key; an existing configuration survives a reinstall.
. "$(dirname "$0")/lib.sh"
need meson
CHECK="python3 $SRC/tests/integration/unit_paths.py"
D=$T/destdir
opt() { meson introspect --buildoptions "$BUILD" |
    python3 -c "import json,sys; print([o['value'] for o in json.load(sys.stdin) if o['name']=='$1'][0])"; }
prefix=$(opt prefix)
bindir=$prefix/$(opt bindir)
case $(opt sysconfdir) in /*) etc=$(opt sysconfdir) ;; *) etc=$prefix/$(opt sysconfdir) ;; esac
unitdir=$(opt systemdunitdir); [ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/system
share=$prefix/$(opt datadir)/cloister

meson install -C "$BUILD" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1 ||
    fail "meson install: $(tail -5 "$T/install.log")"
for b in cloister cloister-kbs cloister-aa cloister-cdh cloister-agent containerd-shim-cloister-v2; do
    [ -x "$D$bindir/$b" ] || fail "$bindir/$b not installed"
done
"$D$bindir/cloister-kbs" --version | grep -q '^cloister-kbs ' || fail "installed cloister-kbs --version"
for f in $unitdir/cloister-kbs.service $unitdir/cloister-aa.service $unitdir/cloister-cdh.service \
    $share/policies/resource/default.rego $share/policies/attestation/default_cpu.rego \
    $share/examples/kbs.toml $share/examples/aa.toml $share/examples/cdh.toml \
    $share/examples/runtime.toml $etc/cloister/kbs.toml $etc/cloister/aa.toml \
    $etc/cloister/cdh.toml $etc/cloister/runtime.toml; do
    [ -f "$D$f" ] || fail "$f not installed"
done
[ "$(stat -c %a "$D$etc/cloister/credentials")" = 700 ] || fail "credentials folder not 0700"
ok "meson install: 6 programs, 3 units, policies, examples, $etc/cloister seeded ($(du -sk "$D" | cut -f1) KiB)"

units="$D$unitdir/cloister-kbs.service $D$unitdir/cloister-aa.service $D$unitdir/cloister-cdh.service"
grep -q "^ExecStart=$bindir/cloister-kbs -c $etc/cloister/kbs.toml$" "$D$unitdir/cloister-kbs.service" ||
    fail "kbs unit ExecStart: $(grep ExecStart= "$D$unitdir/cloister-kbs.service")"
$CHECK --installed "$prefix" --installed "$etc" --map "/=$D/" $units >"$T/paths.log" ||
    fail "unit paths: $(grep MISSING "$T/paths.log")"
ok "every path the installed units name exists ($(grep -c '^ok' "$T/paths.log") paths)"

# twin: a unit that names a program not installed
sed "s#^ExecStart=$bindir/cloister-kbs #ExecStart=$bindir/cloister-kbs-missing #" \
    "$D$unitdir/cloister-kbs.service" >"$T/cloister-kbs.service"
if $CHECK --installed "$prefix" --installed "$etc" --map "/=$D/" "$T/cloister-kbs.service" >"$T/twin.log"; then
    fail "a unit naming a missing program passed the path check"
fi
grep -q "MISSING cloister-kbs.service ExecStart: $bindir/cloister-kbs-missing" "$T/twin.log" ||
    fail "twin: $(cat "$T/twin.log")"
ok "twin: a unit naming $bindir/cloister-kbs-missing fails the path check"

if command -v systemd-analyze >/dev/null 2>&1; then
    # --root: programs are looked up inside the root. It is a hard-linked copy of the install
    # plus the host's own units (the targets ours order against) and /bin/kill (ExecReload).
    V=$T/vroot
    cp -al "$D" "$V"
    mkdir -p "$V/bin" "$V/usr/lib/systemd/system"
    cp /bin/kill "$V/bin/kill"
    cp -an /lib/systemd/system/. "$V/usr/lib/systemd/system/"
    verify() { (cd "$V$unitdir" && systemd-analyze verify --man=no --root="$V" "$@") 2>&1; }
    verify cloister-kbs.service cloister-aa.service cloister-cdh.service >"$T/verify.log" ||
        fail "systemd-analyze verify: $(cat "$T/verify.log")"
    ! grep -qi "unknown\|ignoring\|not executable\|fail" "$T/verify.log" ||
        fail "systemd-analyze verify warned: $(cat "$T/verify.log")"
    # twin: under another name, or systemd would load the installed unit of the same name
    cp "$T/cloister-kbs.service" "$V$unitdir/cloister-kbs-twin.service"
    if verify cloister-kbs-twin.service >"$T/verify2.log"; then
        fail "systemd-analyze verify accepted a unit naming a missing program"
    fi
    grep -q "cloister-kbs-missing is not executable" "$T/verify2.log" || fail "verify twin: $(cat "$T/verify2.log")"
    ok "systemd-analyze verify: the 3 units pass; the twin naming a missing program does not"
    if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
        s=$(cd "$V$unitdir" && systemd-analyze security --offline=yes --root="$V" cloister-kbs.service 2>/dev/null |
            sed -n 's/.*Overall exposure level for cloister-kbs.service: \([0-9.]*\).*/\1/p')
        echo "note: systemd-analyze security exposure of cloister-kbs.service: ${s:-n/a}"
    fi
else
    echo "note: systemd-analyze not installed: path check only"
fi

# the layout under --prefix /usr: configure only (units are made at setup), then check that
# the paths they name are the files the test install put under $prefix and $etc
meson setup "$T/b-usr" "$SRC" --prefix /usr >"$T/setup-usr.log" 2>&1 || fail "meson setup --prefix /usr: $(tail -5 "$T/setup-usr.log")"
u=$T/b-usr/deploy/systemd
grep -q "^ExecStart=/usr/bin/cloister-kbs -c /etc/cloister/kbs.toml$" "$u/cloister-kbs.service" ||
    fail "--prefix /usr unit: $(grep ExecStart= "$u/cloister-kbs.service")"
grep -q "^LoadCredential=tls.key:/etc/cloister/credentials/tls.key$" "$u/cloister-kbs.service" ||
    fail "--prefix /usr credentials: $(grep LoadCredential= "$u/cloister-kbs.service" | head -1)"
$CHECK --installed /usr --installed /etc --map "/usr/bin=$D$bindir" --map "/etc=$D$etc" \
    "$u/cloister-kbs.service" "$u/cloister-aa.service" "$u/cloister-cdh.service" >"$T/paths-usr.log" ||
    fail "--prefix /usr unit paths: $(grep MISSING "$T/paths-usr.log")"
ok "--prefix /usr: units name /usr/bin/… and /etc/cloister/…, the layout meson install makes"

# the example kbs.toml with real keys where the credentials go
C=$T/creds
mkdir -p "$C" "$T/state"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kbs -days 2 \
    -keyout "$C/tls.key" -out "$C/tls.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=token -days 2 \
    -keyout "$C/token.key" -out "$C/token-chain.pem" 2>/dev/null
make_admin_key && cp "$T/admin.pub" "$C/admin.pub"
openssl rand -hex 32 >"$C/store.kek"
sed -e "s#/run/credentials/cloister-kbs.service#$C#" -e "s#/var/lib/cloister#$T/state#" \
    -e "s#0.0.0.0:8080#127.0.0.1:0#" "$D$etc/cloister/kbs.toml" >"$T/kbs-cred.toml"
"$D$bindir/cloister-kbs" -c "$T/kbs-cred.toml" --check >"$T/eff.json" 2>"$T/check.log" ||
    fail "example kbs.toml --check: $(cat "$T/check.log")"
ok "the installed kbs.toml passes --check with keys at its credential paths"
rm "$C/token.key"
rc=0; "$D$bindir/cloister-kbs" -c "$T/kbs-cred.toml" --check >/dev/null 2>"$T/check2.log" || rc=$?
[ $rc != 0 ] && grep -q "token.key" "$T/check2.log" ||
    fail "a missing credential: exit $rc, $(cat "$T/check2.log")"
ok "twin: without token.key --check exits $rc naming it"

# an upgrade keeps the operator's configuration
echo "# edited by the operator" >>"$D$etc/cloister/kbs.toml"
meson install -C "$BUILD" --destdir "$D" --no-rebuild >"$T/install2.log" 2>&1 || fail "reinstall"
tail -1 "$D$etc/cloister/kbs.toml" | grep -q "edited by the operator" || fail "reinstall replaced kbs.toml"
ok "a reinstall keeps $etc/cloister/kbs.toml as the operator left it"
