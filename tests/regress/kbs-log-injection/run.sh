#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Request text that ends up in a log line (resource path, TEE name, plugin name, Bearer token
# errors) cannot write a second line or reach a terminal: after requests carrying LF, CR, ESC,
# an 8-bit CSI and a Unicode line separator, the KBS log holds no forged line and no control
# byte, and the refusals are logged escaped.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"

FORGED="2026-12-07T00:00:00.000Z%20INFO%20%20admin%20'admin':%20POST%20/kbs/v0/resource/a/b/c"
st=$(http GET "/kbs/v0/resource/a/b/c%0a$FORGED")
case $st in 400 | 404) ok "LF in the resource path refused ($st)" ;; *) fail "LF path: status $st" ;; esac
st=$(http GET "/kbs/v0/nosuch%0d%0a$FORGED/x")
case $st in 400 | 404) ok "CRLF in a plugin name refused ($st)" ;; *) fail "CRLF plugin: status $st" ;; esac
st=$(http GET "/kbs/v0/x%1b%5b2J%1b%5d0;owned%07")
case $st in 400 | 404) ok "ESC in a plugin name refused ($st)" ;; *) fail "ESC plugin: status $st" ;; esac
# a TEE name is JSON: \n and \u001b arrive as the raw bytes
st=$(http POST /kbs/v0/auth -H 'Content-Type: application/json' \
    -d '{"version":"0.4.0","tee":"t\u001b[31m\u009b\u2028\nforged","extra-params":""}')
expect_status 401 "$st" "auth with control bytes in the TEE name"
st=$(http GET /kbs/v0/resource/a/b/c -H "Authorization: Bearer $(printf 'a.b.c\033[2J')")
expect_status 400 "$st" "ESC in a Bearer token (a control byte in a header)"
kill -0 "$KBS_PID" || fail "cloister-kbs died"
sleep 0.2

grep -n 'forged\|INFO  admin' "$T/kbs.log" | grep -v 'refused\|=>' && fail "a forged line reached the log"
# every line starts with a timestamp: a line that does not was split off another one
awk '!/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9]/ { print "line " NR ": " $0; bad = 1 } END { exit bad }' \
    "$T/kbs.log" || fail "the log holds a line that is not an event"
if LC_ALL=C grep -n "$(printf '[\001-\010\013-\037\177]')" "$T/kbs.log"; then
    fail "a control byte reached the log"
fi
LC_ALL=C grep -q "$(printf '\302\233')" "$T/kbs.log" && fail "an 8-bit CSI reached the log"
LC_ALL=C grep -q "$(printf '\342\200\250')" "$T/kbs.log" && fail "U+2028 reached the log"
grep -qF "TEE 't\x1b[31m\u{009b}\u{2028}\x0aforged'" "$T/kbs.log" ||
    fail "the TEE name is not logged escaped: $(grep TEE "$T/kbs.log")"
grep -qF "GET /kbs/v0/resource/a/b/c\x0a2026-12-07" "$T/kbs.log" ||
    fail "the resource path is not logged escaped: $(grep resource "$T/kbs.log")"
ok "refusals logged on one line each, escaped"
echo PASS
