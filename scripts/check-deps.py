#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The dependency rule, checked: a module includes only the headers of the modules below it.

Arrows point down only. Each entry lists what a module may include besides itself; an entry of
the form "kbs/kbs_client.h" allows one header of a module, not the module. docs/architecture.md
draws the same graph. Exits 1 naming each include that breaks the rule.
"""
import os
import re
import sys

ALLOWED = {
    'base': [],
    'json': ['base'],
    'toml': ['base', 'json'],
    'crypto': ['base', 'json'],
    'net': ['base'],
    'store': ['base'],
    'rego': ['base', 'json'],
    'tee': ['base', 'json', 'crypto', 'net'],
    'as': ['base', 'json', 'toml', 'crypto', 'store', 'rego', 'tee'],
    'kbs': ['base', 'json', 'toml', 'crypto', 'net', 'store', 'rego', 'tee', 'as'],
    'image': ['base', 'json', 'toml', 'crypto', 'net'],
    'aa': ['base', 'json', 'toml', 'crypto', 'net', 'tee', 'kbs/kbs_client.h'],
    'cdh': ['base', 'json', 'toml', 'crypto', 'net', 'image', 'aa', 'kbs/kbs_client.h'],
    'agent': ['base', 'json', 'toml', 'net', 'rego', 'aa'],
    'shim': ['base', 'json', 'toml', 'crypto', 'net', 'aa'],
    'cmd': ['*'],
}
# Headers of a module that other modules may not include (the module's own parts).
PRIVATE = re.compile(r'(_int|_internal|_parts|priv)\.h$')

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
inc = re.compile(r'^\s*#\s*include\s+"([a-z0-9_]+)/([^"]+)"')
bad = 0
for mod in sorted(os.listdir(root)):
    mdir = os.path.join(root, mod)
    if not os.path.isdir(mdir):
        continue
    if mod not in ALLOWED:
        print(f'check-deps: src/{mod}/ is a module the rule does not list (scripts/check-deps.py)')
        bad = 1
        continue
    allowed = ALLOWED[mod]
    for dirpath, _, files in os.walk(mdir):
        for f in sorted(files):
            if not f.endswith(('.c', '.h')):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, os.path.join(root, '..'))
            for n, line in enumerate(open(path, encoding='utf-8', errors='replace'), 1):
                m = inc.match(line)
                if not m:
                    continue
                other, header = m.group(1), m.group(2)
                if other == mod or not os.path.isdir(os.path.join(root, other)):
                    continue
                if '*' not in allowed and other not in allowed and f'{other}/{header}' not in allowed:
                    print(f'check-deps: {rel}:{n}: {mod} may not include "{other}/{header}"')
                    bad = 1
                elif PRIVATE.search(header):
                    print(f'check-deps: {rel}:{n}: "{other}/{header}" is private to src/{other}')
                    bad = 1
sys.exit(bad)
