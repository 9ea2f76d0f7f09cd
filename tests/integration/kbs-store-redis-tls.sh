#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# TLS to Redis (rediss://): a redis-server 7 started here TLS-only (plaintext port off) with a
# self-signed CA and client certificates required (tls-auth-clients yes). The KBS reaches it
# with url = "rediss://localhost:P" + CLOISTER_REDIS_CA_FILE and a client certificate: an
# admin write lands under trustee's key (read back with redis-cli --tls), a full client
# handshake gets the secret back (also one of 1.5 MiB), CLIENT LIST shows the KBS on the TLS
# port (the only one), and a restart of redis-server mid-way is survived without
# restarting the KBS. Tamper twins, each refused naming the stage: a CA that did not sign the
# server's certificate, a host name the certificate does not carry, no client certificate, a
# certificate without its key, the "#insecure" fragment, TLS files with a redis:// url; and
# plaintext redis:// against the TLS port fails at start, within the timeout.
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/integration/store-lib.sh"
need redis-server redis-cli openssl timeout
make_admin_key
no_sanitizer_report() { # (an ASan+UBSan build reports into the KBS's own output)
    if grep -q 'Sanitizer\|runtime error' "$@"; then grep -A30 'Sanitizer\|runtime error' "$@" | head -60; fail "sanitizer report in $*"; fi
}

# ---- a CA, a server certificate for localhost, a client certificate, a stranger CA ----
for ca in ca other; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=cloister test $ca" -keyout "$T/$ca.key" -out "$T/$ca.pem" 2>/dev/null || fail "openssl: $ca"
done
cert() { # cert NAME SUBJECT EXTENSIONS: $T/NAME.pem + .key, signed by ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
        -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null || fail "openssl: $1 key"
    printf '%s\n' "$3" > "$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
        -extfile "$T/$1.ext" -out "$T/$1.pem" 2>/dev/null || fail "openssl: $1 certificate"
}
cert server /CN=localhost 'subjectAltName=DNS:localhost'
cert client /CN=cloister-kbs 'extendedKeyUsage=clientAuth'

# ---- redis-server, TLS only ----
RD_PORT=$(free_port)
mkdir -p "$T/redis"
rcli() { redis-cli --tls --cacert "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key" -h localhost -p "$RD_PORT" "$@"; }
start_redis_tls() {
    redis-server --port 0 --tls-port "$RD_PORT" --bind 127.0.0.1 --tls-cert-file "$T/server.pem" \
        --tls-key-file "$T/server.key" --tls-ca-cert-file "$T/ca.pem" --tls-auth-clients yes \
        --dir "$T/redis" --save "" --appendonly yes --appendfsync always --daemonize no >>"$T/redis.log" 2>&1 &
    RD_PID=$!
    PIDS="$PIDS $RD_PID"
    i=0
    until rcli ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "redis-server (TLS) did not come up: $(tail -5 "$T/redis.log")"; sleep 0.1
    done
}
start_redis_tls
[ "$(rcli --raw CONFIG GET port | sed -n 2p)" = 0 ] || fail "redis-server has a plaintext port"
[ "$(rcli --raw CONFIG GET tls-auth-clients | sed -n 2p)" = yes ] || fail "redis-server does not require client certificates"
ok "redis-server $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/') serves TLS only on $RD_PORT, client certificates required"

# ---- the KBS over rediss:// ----
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/signer.key" 2>/dev/null
store_toml() { # store_toml URL
    STORE_TOML="[storage_backend]
storage_type = \"Redis\"

[storage_backend.backends.redis]
url = \"$1\"
timeout_ms = 3000

[attestation_service.attestation_token_broker.signer]
key_path = \"$T/signer.key\""
}
P=$(free_port)
store_toml "rediss://localhost:$RD_PORT"
CLOISTER_TEST_STORE=Redis write_config "$T/kbs.toml" "$P"
grep -q "^url = \"rediss://localhost:$RD_PORT\"" "$T/kbs.toml" || fail "the config does not name rediss://"
export CLOISTER_REDIS_CA_FILE="$T/ca.pem" CLOISTER_REDIS_CERT_FILE="$T/client.pem" CLOISTER_REDIS_KEY_FILE="$T/client.key"
"$KBS_BIN" -c "$T/kbs.toml" --check > "$T/check.out" 2>&1 || fail "--check with the TLS files: $(cat "$T/check.out")"
start_kbs "$T/kbs.toml"
head -c 24 /dev/urandom | base64 > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/tls --file "$T/secret" \
    || fail "set-resource over rediss://"
[ "$(rcli --raw GET repository:default/key/tls)" = "$(cat "$T/secret")" ] \
    || fail "redis-cli --tls: repository:default/key/tls does not hold the secret"
ok "set-resource through the KBS: redis-cli --tls reads repository:default/key/tls"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/tls > "$T/got" || fail "get-resource (RCAR) over rediss://"
cmp -s "$T/secret" "$T/got" || fail "the secret from the handshake differs"
ok "a full client handshake (auth, attest, resource) gets the secret back"
# a resource of 1.5 MiB (the HTTP body cap is 2 MiB): many TLS records and relay buffers each way
head -c 1572864 /dev/urandom > "$T/big"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/big --file "$T/big" \
    || fail "set-resource of 1.5 MiB over rediss://"
rcli --raw GET repository:default/key/big | head -c 1572864 | cmp -s - "$T/big" || fail "redis-cli --tls: the 1.5 MiB resource differs"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/big > "$T/gotbig" || fail "get-resource of 1.5 MiB"
cmp -s "$T/big" "$T/gotbig" || fail "the 1.5 MiB secret from the handshake differs"
ok "a 1.5 MiB resource: written through the KBS, read back by redis-cli --tls and by a client handshake"

# ---- from the server's side: the KBS's connections are on the TLS port, the only one ----
rcli CLIENT LIST > "$T/clients"
n=$(grep -c "laddr=127.0.0.1:$RD_PORT" "$T/clients" || true)
[ "$n" -ge 2 ] || fail "CLIENT LIST shows $n connection(s) on the TLS port (the KBS's and redis-cli's expected): $(cat "$T/clients")"
grep -v "laddr=127.0.0.1:$RD_PORT" "$T/clients" && fail "a connection not on the TLS port"
if timeout 10 redis-cli -h 127.0.0.1 -p "$RD_PORT" ping 2>/dev/null | grep -q PONG; then
    fail "plaintext PING answered on the TLS port"
fi
ok "CLIENT LIST: $((n - 1)) KBS connection(s), all on the TLS port (plaintext port 0; plaintext PING unanswered)"

# ---- redis-server restarted mid-way: the KBS reconnects by itself ----
kill "$RD_PID"; wait "$RD_PID" 2>/dev/null || true
start_redis_tls
[ "$(rcli --raw GET repository:default/key/tls)" = "$(cat "$T/secret")" ] || fail "the secret did not survive the restart (appendonly)"
head -c 24 /dev/urandom | base64 > "$T/secret2"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/tls2 --file "$T/secret2" \
    || fail "set-resource after redis-server restarted"
[ "$(rcli --raw GET repository:default/key/tls2)" = "$(cat "$T/secret2")" ] || fail "the write after the restart did not land"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/tls2 > "$T/got2" || fail "get-resource after the restart"
cmp -s "$T/secret2" "$T/got2" || fail "the secret after the restart differs"
kill -0 "$KBS_PID" || fail "the KBS died"
grep -q 'Redis TLS: localhost:'"$RD_PORT"': ' "$T/kbs.log" || fail "the KBS did not log why the TLS connection ended"
ok "redis-server restarted: the same KBS writes and serves again ($(grep -o 'Redis TLS: localhost:[0-9]*: .*' "$T/kbs.log" | head -1 | cut -c1-120))"
stop_kbs
grep -q 'stopping' "$T/kbs.log" || fail "the KBS did not stop cleanly"
no_sanitizer_report "$T/kbs.log"

# ---- tamper twins: each refused at start, naming the stage ----
refused() { # refused WHAT PATTERN [env...]: the KBS exits (within 20 s) and its output matches
    what=$1; pat=$2; shift 2
    set +e
    env "$@" timeout 20 "$KBS_BIN" -c "$T/kbs.toml" > "$T/bad.log" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "$what: the KBS exited 0"
    [ $rc -ne 124 ] || fail "$what: the KBS started (or hung) instead of refusing"
    grep -q -- "$pat" "$T/bad.log" || fail "$what: the refusal does not say \"$pat\": $(cat "$T/bad.log")"
    no_sanitizer_report "$T/bad.log"
    ok "$what: $(grep -o -- "$pat.*" "$T/bad.log" | head -1 | cut -c1-160)"
}
refused "a CA that did not sign the server's certificate" \
    "Redis TLS: handshake with localhost:$RD_PORT: certificate verify failed" CLOISTER_REDIS_CA_FILE="$T/other.pem"
refused "a host name the certificate does not carry (127.0.0.1)" \
    "Redis TLS: handshake with 127.0.0.1:$RD_PORT: certificate verify failed (IP address mismatch)" \
    REDIS_URL="rediss://127.0.0.1:$RD_PORT"
refused "no client certificate while the server requires one" \
    "Redis TLS: handshake with localhost:$RD_PORT: .*certificate required" \
    CLOISTER_REDIS_CERT_FILE= CLOISTER_REDIS_KEY_FILE=
refused "a client certificate the server's CA did not sign (the stranger CA's own)" \
    "Redis TLS: handshake with localhost:$RD_PORT: .*unknown ca" \
    CLOISTER_REDIS_CERT_FILE="$T/other.pem" CLOISTER_REDIS_KEY_FILE="$T/other.key"
refused "a certificate without its key (config)" \
    "CLOISTER_REDIS_CERT_FILE is set without CLOISTER_REDIS_KEY_FILE" CLOISTER_REDIS_KEY_FILE=
if CLOISTER_REDIS_KEY_FILE= "$KBS_BIN" -c "$T/kbs.toml" --check > "$T/bad.log" 2>&1; then
    fail "--check passed a certificate without its key"
fi
grep -q "CLOISTER_REDIS_CERT_FILE is set without CLOISTER_REDIS_KEY_FILE" "$T/bad.log" || fail "--check: $(cat "$T/bad.log")"
if CLOISTER_REDIS_CA_FILE="$T/missing.pem" "$KBS_BIN" -c "$T/kbs.toml" --check > "$T/bad.log" 2>&1; then
    fail "--check passed a CA file that does not exist"
fi
grep -q "CLOISTER_REDIS_CA_FILE" "$T/bad.log" || fail "--check missing CA: $(cat "$T/bad.log")"
ok "--check refuses them too (certificate without key; a CA file that does not exist)"
refused "rediss://...#insecure (redis-rs's no-verification switch)" \
    "Redis url: rediss://...#insecure (no server verification) is refused" \
    REDIS_URL="rediss://localhost:$RD_PORT/#insecure"
refused "TLS files with a plaintext redis:// url" \
    "Redis url: redis:// (no TLS) while TLS files are given" REDIS_URL="redis://localhost:$RD_PORT"

# ---- plaintext redis:// against the TLS port: fails within the timeout, does not hang ----
# (the KBS reads the resource policy at start: that first command meets a TLS server)
t0=$(date +%s)
refused "plaintext redis:// against the TLS port" "Redis: [A-Z]*: " REDIS_URL="redis://localhost:$RD_PORT" \
    CLOISTER_REDIS_CA_FILE= CLOISTER_REDIS_CERT_FILE= CLOISTER_REDIS_KEY_FILE=
took=$(($(date +%s) - t0))
[ "$took" -lt 10 ] || fail "plaintext redis:// against TLS took ${took}s (timeout_ms is 3000)"
ok "plaintext redis:// against the TLS port: refused in ${took}s (timeout_ms 3000)"
echo PASS
