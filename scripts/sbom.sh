#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Writes an SPDX 2.3 SBOM (JSON) of Cloister's programs and the Debian packages they link.
# Each program: name, SHA-256, version from `git describe` (the project's when not a checkout).
# Each package: from `ldd` (the libraries the loader resolves) and `dpkg -S` (their owner),
# version and architecture from `dpkg-query -W`, declared licence from the `Files: *` stanza of
# /usr/share/doc/PKG/copyright when that file is machine-readable (DEP-5), else NOASSERTION.
# Relationships: DOCUMENT DESCRIBES each program; each program DEPENDS_ON each package.
# Usage: scripts/sbom.sh [-o OUT.json] [--version V] PROGRAM... (or a folder of programs)
# `make sbom` runs it on the build's programs into build/cloister.spdx.json.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
ver=$(git -C "$here" describe --tags --always --dirty 2>/dev/null ||
    sed -n "s/^ *version : '\([^']*\)'.*/\1/p" "$here/meson.build" | head -1)
exec python3 - "$ver" "$@" <<'PY'
import hashlib, json, os, re, subprocess, sys, time, uuid

USAGE = "usage: sbom.sh [-o OUT.json] [--version V] PROGRAM|FOLDER..."
# Debian copyright short names -> SPDX identifiers (the ones Cloister's libraries use and a
# few common others); anything else is NOASSERTION with the Debian name in licenseComments.
DEB2SPDX = {
    "apache-2.0": "Apache-2.0", "expat": "MIT", "mit": "MIT", "isc": "ISC", "zlib": "Zlib",
    "curl": "curl", "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later", "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later", "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later",
    "lgpl-2+": "LGPL-2.0-or-later", "mpl-2.0": "MPL-2.0", "public-domain": "NOASSERTION",
    "openssl": "OpenSSL", "psf-2": "PSF-2.0", "x11": "X11", "unicode-dfs-2016": "Unicode-DFS-2016",
}


def die(msg):
    print(f"sbom: {msg}", file=sys.stderr)
    sys.exit(2)


def run(*cmd, ok_codes=(0,)):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.stdout if r.returncode in ok_codes else ""


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def linked_libs(path):
    """Resolved paths of the shared libraries `ldd` lists for an ELF program."""
    libs = []
    for line in run("ldd", path).splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


def variants(lib):
    """lib, its real path, and their /usr-merged twins: dpkg knows each file by one name."""
    out = []
    for c in (lib, os.path.realpath(lib)):
        out += [c, c[4:] if c.startswith("/usr/") else "/usr" + c]
    return list(dict.fromkeys(out))


def owners(libs):
    """{lib: Debian package} from one `dpkg -S` call (it is slow to start: ~1 s a call)."""
    names = sorted({v for lib in libs for v in variants(lib)})
    found = {}
    for line in run("dpkg", "-S", *names, ok_codes=(0, 1)).splitlines():
        if ": " in line and not line.startswith("diversion"):
            pkgs, path = line.split(": ", 1)
            found.setdefault(path.strip(), pkgs.split(",")[0].strip())
    return {lib: next((found[v] for v in variants(lib) if v in found), None) for lib in libs}


def versions(pkgs):
    """{package: (version, architecture)} from one `dpkg-query -W` call."""
    out = {}
    fmt = "${binary:Package} ${Version} ${Architecture}\\n"
    for line in run("dpkg-query", "-W", "-f=" + fmt, *pkgs, ok_codes=(0, 1)).splitlines():
        f = line.split()
        if len(f) == 3:
            out[f[0]] = (f[1], f[2])
            out.setdefault(f[0].split(":")[0], (f[1], f[2]))
    return out


def licence(pkg):
    name = pkg.split(":")[0]
    try:
        with open(f"/usr/share/doc/{name}/copyright", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return "NOASSERTION", None
    if not re.match(r"Format:\s*\S*copyright-format", text):
        return "NOASSERTION", "copyright file is not machine-readable"
    for stanza in re.split(r"\n\s*\n", text):
        if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
            m = re.search(r"^License:\s*(.+)$", stanza, re.M)
            if m:
                deb = m.group(1).strip()
                parts = re.split(r"\s+(or|and)\s+", deb, flags=re.I)
                ids = [DEB2SPDX.get(p.lower()) if i % 2 == 0 else p.upper()
                       for i, p in enumerate(parts)]
                if all(ids) and "NOASSERTION" not in ids:
                    expr = " ".join(ids)
                    return (f"({expr})" if len(ids) > 1 else expr), f"Debian: {deb}"
                return "NOASSERTION", f"Debian: {deb}"
    return "NOASSERTION", "no 'Files: *' stanza"


def spdx_id(kind, name):
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def deb_package(pkg, ver_arch):
    lic, note = licence(pkg)
    d = {
        "SPDXID": spdx_id("Deb", pkg), "name": pkg.split(":")[0],
        "versionInfo": ver_arch[0] if ver_arch else "NOASSERTION",
        "supplier": "Organization: Debian", "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False, "primaryPackagePurpose": "LIBRARY",
        "licenseConcluded": "NOASSERTION", "licenseDeclared": lic,
        "copyrightText": "NOASSERTION",
    }
    if note:
        d["licenseComments"] = note
    if ver_arch:
        d["externalRefs"] = [{
            "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
            "referenceLocator": f"pkg:deb/debian/{d['name']}@{ver_arch[0]}?arch={ver_arch[1]}"}]
    return d


def main(argv):
    ver, out, progs = argv[0], None, []
    it = iter(argv[1:])
    for a in it:
        if a in ("-o", "--output"):
            out = next(it, None) or die(USAGE)
        elif a == "--version":
            ver = next(it, None) or die(USAGE)
        elif a in ("-h", "--help"):
            print(USAGE)
            return 0
        elif os.path.isdir(a):
            progs += sorted(os.path.join(a, f) for f in os.listdir(a)
                            if os.path.isfile(os.path.join(a, f)) and os.access(os.path.join(a, f), os.X_OK))
        elif os.path.isfile(a):
            progs.append(a)
        else:
            die(f"'{a}' is not a program or folder ({USAGE})")
    if not progs:
        die(USAGE)
    libs = {}
    for p in progs:
        with open(p, "rb") as f:
            if f.read(4) != b"\x7fELF":
                die(f"'{p}' is not an ELF program")
        libs[p] = linked_libs(p)
    owner = owners([lib for ls in libs.values() for lib in ls])
    vers = versions(sorted({o for o in owner.values() if o}))
    packages, rels, debs = [], [], {}
    for p in progs:
        name = os.path.basename(p)
        pid = spdx_id("Program", name)
        packages.append({
            "SPDXID": pid, "name": name, "versionInfo": ver,
            "supplier": "Organization: Cloister", "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False, "primaryPackagePurpose": "APPLICATION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": sha256(p)}],
            "licenseConcluded": "Apache-2.0", "licenseDeclared": "Apache-2.0",
            "copyrightText": "NOASSERTION",
        })
        rels.append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                     "relatedSpdxElement": pid})
        for pkg in dict.fromkeys(owner[lib] for lib in libs[p]):
            if not pkg:
                missing = [lib for lib in libs[p] if not owner[lib]]
                print(f"sbom: {name}: {', '.join(missing)} belong to no Debian package; left out",
                      file=sys.stderr)
                continue
            if pkg not in debs:
                debs[pkg] = deb_package(pkg, vers.get(pkg))
            rels.append({"spdxElementId": pid, "relationshipType": "DEPENDS_ON",
                         "relatedSpdxElement": debs[pkg]["SPDXID"]})
    packages += [debs[k] for k in sorted(debs)]
    digest = hashlib.sha256("".join(p.get("checksums", [{}])[0].get("checksumValue", p["name"])
                                    for p in packages).encode()).hexdigest()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    doc = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"cloister-{ver}",
        "documentNamespace": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, 'cloister-sbom-' + digest)}",
        "creationInfo": {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
                         "creators": ["Tool: cloister-scripts-sbom.sh", "Organization: Cloister"]},
        "packages": packages, "relationships": rels,
    }
    text = json.dumps(doc, indent=2) + "\n"
    if out:
        tmp = out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
        print(f"sbom: {out}: {len(progs)} programs, {len(debs)} Debian packages")
    else:
        sys.stdout.write(text)
    return 0


sys.exit(main(sys.argv[1:]))
PY
