#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# scripts/sbom.sh on the build's six programs: the output is SPDX 2.3 JSON that parses, names
# each program with the SHA-256 sha256sum gives and the build's version, lists every Debian
# package that owns a library ldd resolves for it (dpkg -S, checked independently here), with
# its installed version (dpkg-query), and a DEPENDS_ON from the program to each.
# Twin: a copy of a program with one byte changed gets another hash, and the check of the first
# SBOM against it fails.
. "$(dirname "$0")/lib.sh"
need ldd dpkg dpkg-query sha256sum
P=$BUILD/src/cmd
progs="cloister cloister-kbs cloister-aa cloister-cdh cloister-agent containerd-shim-cloister-v2"
mkdir -p "$T/bin"
for b in $progs; do
    [ -x "$P/$b" ] || fail "$b not built"
    cp "$P/$b" "$T/bin/$b"
done
start=$(date +%s)
"$SRC/scripts/sbom.sh" -o "$T/sbom.json" "$T/bin" >"$T/sbom.log" 2>&1 || fail "sbom.sh: $(cat "$T/sbom.log")"
echo "note: sbom.sh on 6 programs took $(($(date +%s) - start)) s"

# independent view: sha256sum, ldd, and the owner of each library from dpkg's own file lists
# (/var/lib/dpkg/info/*.list, not dpkg -S as sbom.sh uses), versions from one dpkg-query
owner_of() { # owner_of LIB: package name (with :arch when multi-arch), or nothing
    real=$(readlink -f "$1")
    f=$(grep -lxF -e "$1" -e "/usr$1" -e "${1#/usr}" -e "$real" -e "/usr$real" -e "${real#/usr}" \
        /var/lib/dpkg/info/*.list 2>/dev/null | head -1)
    [ -n "$f" ] && basename "$f" .list
}
for b in $progs; do ldd "$T/bin/$b" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'; done |
    sort -u >"$T/libs.txt"
while read -r lib; do echo "$lib $(owner_of "$lib")"; done <"$T/libs.txt" >"$T/owners.txt"
dpkg-query -W -f='${binary:Package} ${Version}\n' $(cut -d' ' -f2 "$T/owners.txt" | sort -u) >"$T/versions.txt"
for b in $progs; do
    printf '%s %s' "$b" "$(sha256sum "$T/bin/$b" | cut -d' ' -f1)"
    for lib in $(ldd "$T/bin/$b" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p'); do
        pkg=$(sed -n "s#^$lib \(.*\)#\1#p" "$T/owners.txt")
        [ -n "$pkg" ] || continue
        v=$(awk -v p="$pkg" '$1 == p || $1 == p":amd64" || $1 ":" "" == p { print $2; exit }' "$T/versions.txt")
        printf ' %s=%s' "$pkg" "$v"
    done
    echo
done >"$T/expect.txt"
[ "$(wc -w <"$T/expect.txt")" -gt 18 ] || fail "no linked package found independently: $(cat "$T/expect.txt")"

WANT_VERSION=$(git -C "$SRC" describe --tags --always --dirty 2>/dev/null ||
    sed -n "s/^ *version : '\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -1)
check() { # check SBOM EXPECT: 0 when the SBOM matches what EXPECT lists
    python3 - "$1" "$2" "$WANT_VERSION" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
bad = []
for k, v in (("spdxVersion", "SPDX-2.3"), ("dataLicense", "CC0-1.0"), ("SPDXID", "SPDXRef-DOCUMENT")):
    if doc.get(k) != v:
        bad.append(f"{k} = {doc.get(k)!r}")
for k in ("name", "documentNamespace", "creationInfo", "packages", "relationships"):
    if k not in doc:
        bad.append(f"{k} missing")
pk = {p["SPDXID"]: p for p in doc["packages"]}
byname = {p["name"]: p for p in doc["packages"]}
for p in doc["packages"]:
    for k in ("SPDXID", "name", "downloadLocation", "versionInfo", "licenseDeclared"):
        if not p.get(k):
            bad.append(f"package {p.get('name')}: {k} missing")
rel = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
for r in rel:
    for e in (r[0], r[2]):
        if e != "SPDXRef-DOCUMENT" and e not in pk:
            bad.append(f"relationship names unknown element {e}")
for line in open(sys.argv[2]):
    f = line.split()
    name, sha, deps = f[0], f[1], f[2:]
    p = byname.get(name)
    if not p:
        bad.append(f"{name}: not in the SBOM")
        continue
    got = [c["checksumValue"] for c in p.get("checksums", []) if c["algorithm"] == "SHA256"]
    if got != [sha]:
        bad.append(f"{name}: SHA256 {got} but the file has {sha}")
    if p["versionInfo"] != sys.argv[3]:
        bad.append(f"{name}: version {p['versionInfo']!r}, git describe says {sys.argv[3]!r}")
    if ("SPDXRef-DOCUMENT", "DESCRIBES", p["SPDXID"]) not in rel:
        bad.append(f"{name}: not DESCRIBED by the document")
    for d in deps:
        pkg, ver = d.split("=", 1)
        q = byname.get(pkg.split(":")[0])
        if not q:
            bad.append(f"{name}: linked package {pkg} missing")
        elif q["versionInfo"] != ver:
            bad.append(f"{pkg}: version {q['versionInfo']} but dpkg-query says {ver}")
        elif (p["SPDXID"], "DEPENDS_ON", q["SPDXID"]) not in rel:
            bad.append(f"{name} DEPENDS_ON {pkg} missing")
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}
check "$T/sbom.json" "$T/expect.txt" || fail "the SBOM does not match the programs"
n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(p["primaryPackagePurpose"]=="LIBRARY" for p in d["packages"]))' "$T/sbom.json")
ok "SPDX 2.3 SBOM: 6 programs with their SHA-256, $n Debian packages with versions, DEPENDS_ON each"
grep -q '"name": "libcrypto3"\|"name": "libssl3"' "$T/sbom.json" || fail "libssl3 (libcrypto) not listed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=[p for p in d["packages"] if p["name"]=="libssl3"][0]; assert p["licenseDeclared"]=="Apache-2.0", p' "$T/sbom.json" ||
    fail "libssl3's machine-readable copyright gives Apache-2.0"
ok "licence from a machine-readable copyright file (libssl3: Apache-2.0)"

# twin: one byte of cloister-kbs changed
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[len(b)//2]^=1; open(sys.argv[1],"wb").write(b)' "$T/bin/cloister-kbs"
sed "s/^cloister-kbs [0-9a-f]*/cloister-kbs $(sha256sum "$T/bin/cloister-kbs" | cut -d' ' -f1)/" "$T/expect.txt" >"$T/expect2.txt"
if check "$T/sbom.json" "$T/expect2.txt" >"$T/twin.log"; then fail "the SBOM matched a tampered cloister-kbs"; fi
grep -q "cloister-kbs: SHA256" "$T/twin.log" || fail "twin: $(cat "$T/twin.log")"
"$SRC/scripts/sbom.sh" -o "$T/sbom2.json" "$T/bin" >/dev/null 2>&1 || fail "sbom.sh (second run)"
check "$T/sbom2.json" "$T/expect2.txt" >/dev/null || fail "a new SBOM of the changed program does not match it"
ok "twin: a changed byte of cloister-kbs gives another SHA-256; the first SBOM no longer matches"

# twin: not a program
rc=0; "$SRC/scripts/sbom.sh" -o "$T/x.json" "$SRC/README.md" >"$T/x.log" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "is not an ELF program" "$T/x.log" || fail "a text file: exit $rc, $(cat "$T/x.log")"
ok "a file that is not an ELF program is refused by name"
