#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# TLS to PostgreSQL: a PostgreSQL 15 started here with a self-signed CA, TLS required for TCP
# (hostssl only). The KBS reaches it with sslmode=verify-full in POSTGRES_URL, and with the
# table form plus libpq's PGSSLMODE / PGSSLROOTCERT environment; the server reports the
# connections as TLS. Tamper twins: a CA that did not sign the server's certificate, and a
# host name the certificate does not carry, stop the KBS at start naming the stage; TLS off is
# refused by the server.
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/integration/store-lib.sh"
need openssl
make_admin_key
start_store Postgres

# ---- a CA, a server certificate for localhost, and a stranger CA ----
for ca in ca other; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=cloister test $ca" -keyout "$T/$ca.key" -out "$T/$ca.pem" 2>/dev/null || fail "openssl: $ca"
done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null || fail "openssl: server key"
printf 'subjectAltName=DNS:localhost\n' > "$T/san.ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/san.ext" -out "$T/server.pem" 2>/dev/null || fail "openssl: server certificate"
cp "$T/server.pem" "$T/server.key" "$PGD/data/"
chmod 600 "$PGD/data/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$PGD/data/server.pem" "$PGD/data/server.key"
cat > "$PGD/data/pg_hba.conf" <<HBA
local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
hostnossl all all 127.0.0.1/32 reject
HBA
psql_q "ALTER SYSTEM SET ssl = on" > /dev/null || fail "psql: ssl = on"
psql_q "ALTER SYSTEM SET ssl_cert_file = 'server.pem'" > /dev/null || fail "psql: ssl_cert_file"
psql_q "ALTER SYSTEM SET ssl_key_file = 'server.key'" > /dev/null || fail "psql: ssl_key_file"
psql_q "SELECT pg_reload_conf()" > /dev/null || fail "psql: reload"
sleep 1
[ "$(psql_q "SHOW ssl")" = on ] || fail "PostgreSQL did not turn TLS on: $(tail -5 "$PGD/pg.log")"
ok "PostgreSQL 15 serves TLS only (self-signed CA, certificate for localhost)"

URL_BASE="postgresql://cloister:$PG_PASS@localhost:$PG_PORT/kbsdb"
P=$(free_port)
CLOISTER_TEST_STORE=Postgres write_config "$T/kbs.toml" "$P"

# ---- POSTGRES_URL with sslmode=verify-full ----
POSTGRES_URL="$URL_BASE?sslmode=verify-full&sslrootcert=$T/ca.pem" start_kbs "$T/kbs.toml"
head -c 24 /dev/urandom | base64 > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/tls --file "$T/secret" \
    || fail "set-resource over a TLS store"
[ "$(psql_q "SELECT convert_from(value, 'UTF8') FROM repository WHERE key = 'default/key/tls'")" = "$(cat "$T/secret")" ] \
    || fail "the resource did not reach the table"
n=$(psql_q "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'cloister-kbs' AND s.ssl")
m=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cloister-kbs'")
[ "$n" -ge 1 ] && [ "$n" = "$m" ] || fail "KBS connections over TLS: $n of $m"
ok "POSTGRES_URL sslmode=verify-full: the KBS writes, and its $m connection(s) are TLS (pg_stat_ssl)"
stop_kbs

# ---- the table form: libpq's PG* environment carries the TLS settings ----
# (trustee's table has no TLS key; verify-full needs the certificate's name as host)
sed 's/^host = "127.0.0.1"/host = "localhost"/' "$T/kbs.toml" > "$T/table.toml"
grep -q '^host = "localhost"' "$T/table.toml" || fail "the test config has no host key to change"
PGSSLMODE=verify-full PGSSLROOTCERT="$T/ca.pem" start_kbs "$T/table.toml"
head -c 24 /dev/urandom | base64 > "$T/secret2"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/tls2 --file "$T/secret2" \
    || fail "set-resource through the table-form KBS over TLS"
n=$(psql_q "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'cloister-kbs' AND s.ssl")
[ "$n" -ge 1 ] || fail "table-form KBS connections over TLS: $n"
stop_kbs
ok "[storage_backend.backends.postgres] table + PGSSLMODE=verify-full PGSSLROOTCERT: writes over TLS"

# ---- tamper twins ----
if POSTGRES_URL="$URL_BASE?sslmode=verify-full&sslrootcert=$T/other.pem" "$KBS_BIN" -c "$T/kbs.toml" > "$T/bad.log" 2>&1; then
    fail "the KBS started with a CA that did not sign the server's certificate"
fi
grep -q 'Postgres: connect' "$T/bad.log" || fail "wrong-CA refusal does not name the stage: $(cat "$T/bad.log")"
grep -qi 'certificate verify failed' "$T/bad.log" || fail "wrong-CA refusal does not say why: $(cat "$T/bad.log")"
ok "a CA that did not sign the server's certificate: refused at start: $(grep -o 'Postgres: connect.*' "$T/bad.log" | head -1 | cut -c1-220)"
if POSTGRES_URL="postgresql://cloister:$PG_PASS@127.0.0.1:$PG_PORT/kbsdb?sslmode=verify-full&sslrootcert=$T/ca.pem" \
    "$KBS_BIN" -c "$T/kbs.toml" > "$T/bad.log" 2>&1; then
    fail "the KBS started though the certificate does not name 127.0.0.1"
fi
grep -q 'Postgres: connect' "$T/bad.log" && grep -qi 'does not match host name\|server certificate' "$T/bad.log" \
    || fail "host-name refusal does not say why: $(cat "$T/bad.log")"
ok "a host name the certificate does not carry: refused at start"
if POSTGRES_URL="$URL_BASE?sslmode=disable" "$KBS_BIN" -c "$T/kbs.toml" > "$T/bad.log" 2>&1; then
    fail "the KBS started without TLS on a TLS-only server"
fi
grep -q 'Postgres: connect' "$T/bad.log" || fail "no-TLS refusal does not name the stage: $(cat "$T/bad.log")"
ok "TLS off (sslmode=disable) is refused by the server, and the KBS says so at start"
echo PASS
