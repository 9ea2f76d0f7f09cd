#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that every absolute path a systemd unit names exists after `meson install`.

usage: unit_paths.py [--map FROM=TO]... [--installed PREFIX]... UNIT...

A path under an --installed prefix must exist with the --map that fits applied (the
DESTDIR the test installed into); any other path (/bin/kill) must exist on this host.
LoadCredential= sources are operator secrets: their folder must exist, not the file.
/run/ paths are made at start by systemd or the daemon and are not checked.
Prints one line per path; exits 1 naming each missing one.
"""
import sys

EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop",
             "ExecStopPost", "ExecCondition")
PATH_KEYS = ("WorkingDirectory", "EnvironmentFile", "ConditionPathExists", "ReadWritePaths",
             "ReadOnlyPaths", "RootDirectory", "LoadCredential", "LoadCredentialEncrypted")


def named_paths(text):
    """(key, path, credential?) for each absolute path the unit names."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, val = line.split("=", 1)
        if key.startswith(EXEC_KEYS):
            for tok in val.split():
                tok = tok.lstrip("-@:+!")
                if tok.startswith("/"):
                    yield key, tok, False
        elif key.startswith("LoadCredential"):
            src = val.split(":", 1)[1] if ":" in val else ""
            if src.startswith("/"):
                yield key, src, True
        elif key in PATH_KEYS:
            for tok in val.split():
                tok = tok.lstrip("-")
                if tok.startswith("/"):
                    yield key, tok, False


def main(argv):
    maps, installed, units = [], [], []
    it = iter(argv)
    for a in it:
        if a == "--map":
            f, t = next(it).split("=", 1)
            maps.append((f.rstrip("/"), t.rstrip("/")))
        elif a == "--installed":
            installed.append(next(it).rstrip("/"))
        else:
            units.append(a)
    if not units:
        print(__doc__, file=sys.stderr)
        return 2
    import os
    bad = 0
    for unit in units:
        with open(unit, encoding="utf-8") as f:
            text = f.read()
        for key, path, cred in named_paths(text):
            if path.startswith("/run/"):
                continue
            want = os.path.dirname(path) if cred else path
            where = want
            if any(want == p or want.startswith(p + "/") for p in installed):
                for f, t in sorted(maps, key=lambda m: -len(m[0])):
                    if want == f or want.startswith(f + "/"):
                        where = t + want[len(f):]
                        break
            ok = os.path.exists(where)
            print(f"{'ok' if ok else 'MISSING'} {os.path.basename(unit)} {key}: {want}"
                  + ("" if where == want else f" (at {where})"))
            bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
