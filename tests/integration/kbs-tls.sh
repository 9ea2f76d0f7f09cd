#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cloister-kbs over HTTPS: a certificate for 127.0.0.1, the handshake with the CA given to the
# client (--ca-file); twins: without the CA the client refuses the server, and plain HTTP
# against the TLS port fails.
. "$(dirname "$0")/lib.sh"

make_admin_key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" \
    -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
sed -i "s|^insecure_http = true|private_key = \"$T/tls.key\"\ncertificate = \"$T/tls.crt\"|" "$T/kbs.toml"
grep -q insecure_http "$T/kbs.toml" && fail "setup: insecure_http still set"
URL="https://127.0.0.1:$PORT"
"$KBS_BIN" -c "$T/kbs.toml" >>"$T/kbs.log" 2>&1 &
KBS_PID=$!
PIDS="$PIDS $KBS_PID"
i=0
until curl -fsS --cacert "$T/tls.crt" "$URL/healthz" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "TLS KBS did not come up"; sleep 0.1
done
ok "cloister-kbs serves HTTPS"
printf 'tls secret' > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --ca-file "$T/tls.crt" --admin-key "$T/admin.key" --path t/l/s --file "$T/secret" \
    || fail "admin over TLS"
"$CLI_BIN" kbs get-resource --url "$URL" --ca-file "$T/tls.crt" --path t/l/s > "$T/got" || fail "handshake over TLS"
cmp -s "$T/got" "$T/secret" || fail "secret differs"
ok "handshake and admin calls over TLS with the server's CA"
if "$CLI_BIN" kbs get-resource --url "$URL" --path t/l/s > /dev/null 2>&1; then fail "client accepted an unknown server certificate"; fi
ok "without the CA the client refuses the server"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" || true)
[ "$st" != 200 ] || fail "plain HTTP answered on the TLS port"
ok "plain HTTP is not served on the TLS port"
echo PASS
