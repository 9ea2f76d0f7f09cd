#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Resources encrypted at rest (opt-in, [storage_backend] encryption_key_path) on a real
# PostgreSQL 15: the table holds sealed bytes (checked with psql), the handshake still returns
# the secret, a flipped byte in the database is refused, and a key rotation (new key current,
# old key listed) re-wraps the rows at start so that the new key alone opens them.
. "$(dirname "$0")/lib.sh"
export CLOISTER_TEST_STORE=${CLOISTER_TEST_STORE:-Postgres}
[ "$CLOISTER_TEST_STORE" = Postgres ] || skip "this test reads the rows with psql"

make_admin_key
head -c 32 /dev/urandom > "$T/k1"
head -c 32 /dev/urandom > "$T/k2"
P=$(free_port)
write_config "$T/plain.toml" "$P"
# with_keys CURRENT [OLD]: the config with encryption on
with_keys() {
    sed "s|^storage_type = \"Postgres\"|storage_type = \"Postgres\"\nencryption_key_path = \"$1\"${2:+\nencryption_old_key_paths = [\"$2\"]}|" \
        "$T/plain.toml" > "$T/kbs.toml"
}
with_keys "$T/k1"
start_kbs "$T/kbs.toml"
echo "owner-secret-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" \
    || fail "set-resource"
row=$(psql_q "SELECT encode(value, 'escape') FROM repository WHERE key = 'default/key/one'")
case "$row" in clseal1:*) ;; *) fail "row is not sealed: $(echo "$row" | head -c 40)" ;; esac
psql_q "SELECT value FROM repository" | grep -q "$(cat "$T/secret" | od -An -tx1 | tr -d ' \n' | head -c 16)" \
    && fail "plaintext visible in the table"
ok "psql: the repository row is sealed (clseal1:<key id>:...), no plaintext"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" || fail "get-resource (sealed)"
cmp -s "$T/secret" "$T/got" || fail "sealed secret differs"
ok "handshake returns the secret from the sealed row"

# tamper twin: one flipped bit in the row
psql_q "UPDATE repository SET value = set_byte(value, length(value) - 1, get_byte(value, length(value) - 1) # 1) WHERE key = 'default/key/one'" >/dev/null
if "$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" 2> "$T/err"; then
    fail "a tampered sealed row was released"
fi
grep -q 'tampered' "$T/kbs.log" || fail "the refusal does not say 'tampered'"
ok "a flipped bit in the database is refused (tag check), logged as tampered"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" \
    || fail "re-upload"
kid1=$(psql_q "SELECT substr(encode(value, 'escape'), 9, 8) FROM repository WHERE key = 'default/key/one'")
stop_kbs

# rotation: k2 current, k1 old → rows re-wrapped at start
with_keys "$T/k2" "$T/k1"
start_kbs "$T/kbs.toml"
kid2=$(psql_q "SELECT substr(encode(value, 'escape'), 9, 8) FROM repository WHERE key = 'default/key/one'")
[ "$kid1" != "$kid2" ] || fail "row not re-wrapped: key id still $kid1"
grep -q 're-wrapped under the current encryption key' "$T/kbs.log" || fail "no re-wrap logged"
stop_kbs
with_keys "$T/k2"
start_kbs "$T/kbs.toml"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" || fail "get-resource after rotation"
cmp -s "$T/secret" "$T/got" || fail "secret after rotation differs"
ok "rotation: key id $kid1 → $kid2, the new key alone opens the row"
stop_kbs
with_keys "$T/k1"
start_kbs "$T/kbs.toml"
if "$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" 2>/dev/null; then
    fail "the retired key still opens the row"
fi
ok "the retired key alone no longer opens it"
echo "PASS"
