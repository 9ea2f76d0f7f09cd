#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `cloister image pull` from a registry that answers plain HTTP: without --registry-insecure
# the error says to add it (naming the host); with it, the TLS hint is gone (twin). The
# "registry" is python's http.server: it answers plain HTTP and 404 for every /v2/ path.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
mkdir -p "$T/www"
python3 -m http.server -b 127.0.0.1 -d "$T/www" "$PORT" > "$T/httpd.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "http.server did not start"; sleep 0.1
done

set +e
"$CLI_BIN" image pull "127.0.0.1:$PORT/app:1" "$T/out1" -q 2> "$T/err1"
rc=$?
set -e
[ "$rc" = 7 ] || { cat "$T/err1"; fail "pull from plain HTTP without --registry-insecure: exit $rc, wanted 7"; }
grep -q "hint: .*--registry-insecure 127.0.0.1:$PORT" "$T/err1" ||
    fail "no --registry-insecure hint: $(cat "$T/err1")"
ok "plain-HTTP registry without --registry-insecure: the error says to add it"

set +e
"$CLI_BIN" image pull "127.0.0.1:$PORT/app:1" "$T/out2" -q --registry-insecure "127.0.0.1:$PORT" 2> "$T/err2"
rc=$?
set -e
[ "$rc" = 6 ] || { cat "$T/err2"; fail "pull with --registry-insecure: exit $rc, wanted 6 (404)"; }
if grep -q 'hint:' "$T/err2"; then fail "a TLS hint with --registry-insecure given"; fi
if grep -q "$(printf '\r')" "$T/err2"; then fail "a raw control byte from the registry reached stderr"; fi
ok "with --registry-insecure: reached over HTTP (404 here), no hint, body escaped"
