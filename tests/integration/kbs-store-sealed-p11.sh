#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Resources encrypted at rest with the key-encryption key on a PKCS#11 token: a real SoftHSM2
# token made here (softhsm2-util, pkcs11-tool), an AES-256 key "kek" on it, and
# encryption_key_path = "pkcs11:token=cloister;object=kek?module-path=...&pin-source=file:...".
# The LocalFs file (the resource plugin's folder) holds a clseal1 value under the token's key id, not the plaintext; the
# handshake returns the secret; a flipped byte is refused; --check passes with the right PIN and
# fails with the wrong one naming C_Login; the KBS with the wrong PIN refuses to start; a
# rotation to a second token key re-wraps at start, under the key id that openssl computes
# independently from that key's bytes (imported for the purpose) and its check value.
. "$(dirname "$0")/lib.sh"
need softhsm2-util pkcs11-tool
MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
    if [ -r "$m" ]; then MODULE=$m; break; fi
done
[ -n "$MODULE" ] || skip "libsofthsm2.so is not installed"

mkdir "$T/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" \
    > "$T/softhsm2.conf"
export SOFTHSM2_CONF="$T/softhsm2.conf"
softhsm2-util --init-token --free --label cloister --pin 1234 --so-pin 5678 >/dev/null \
    || fail "softhsm2-util --init-token"
pkcs11-tool --module "$MODULE" --login --pin 1234 --keygen --key-type AES:32 --label kek --id 01 \
    >/dev/null 2>&1 || fail "pkcs11-tool --keygen"
# a second key imported from known bytes, so that its key id can be computed here with openssl:
# SHA-256("pkcs11:" || check value), the check value being AES-256-ECB(key, 16 zero bytes)[0..3)
head -c 32 /dev/urandom > "$T/kekf.bin"
pkcs11-tool --module "$MODULE" --login --pin 1234 --write-object "$T/kekf.bin" --type secrkey \
    --key-type AES:32 --label kekf --id 03 >/dev/null 2>&1 || fail "pkcs11-tool --write-object"
kcv=$(head -c 16 /dev/zero | openssl enc -aes-256-ecb -nopad -K "$(od -An -tx1 "$T/kekf.bin" | tr -d ' \n')" \
    | head -c 3 | od -An -tx1 | tr -d ' \n')
kidf=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(b"pkcs11:" + bytes.fromhex(sys.argv[1])).hexdigest()[:8])' "$kcv")
echo 1234 > "$T/pin"
echo 9999 > "$T/pin.bad"
chmod 600 "$T/pin" "$T/pin.bad"

make_admin_key
P=$(free_port)
write_config "$T/plain.toml" "$P"
# with_pin PINFILE [OBJECT [OLD_OBJECT]]: the config with the token key (default "kek")
uri() { echo "pkcs11:token=cloister;object=$1?module-path=$MODULE\\&pin-source=file:$2"; }
with_pin() {
    old=""
    if [ -n "${3:-}" ]; then old="\nencryption_old_key_paths = [\"$(uri "$3" "$1")\"]"; fi
    sed "s|^storage_type = \"LocalFs\"|storage_type = \"LocalFs\"\nencryption_key_path = \"$(uri "${2:-kek}" "$1")\"$old|" \
        "$T/plain.toml" > "$T/kbs.toml"
}
with_pin "$T/pin"
grep -q '^encryption_key_path = "pkcs11:' "$T/kbs.toml" || fail "config not written"

"$KBS_BIN" -c "$T/kbs.toml" --check > /dev/null 2> "$T/err" || fail "--check with the right PIN: $(cat "$T/err")"
ok "--check opens the token key with the right PIN"

start_kbs "$T/kbs.toml"
echo "owner-secret-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" \
    || fail "set-resource"
f=$(grep -rl "clseal1:" "$T/resources" "$T/store" 2>/dev/null | head -1)
[ -n "$f" ] || fail "no clseal1 value under $T/resources: $(ls -R "$T/resources" | head)"
grep -rq "$(cut -c1-20 "$T/secret")" "$T/resources" "$T/store" && fail "plaintext visible in the store"
kid=$(head -c 16 "$f" | cut -c9-16)
echo "$kid" | grep -qE '^[0-9a-f]{8}$' || fail "key id '$kid' is not 8 hex"
ok "the LocalFs file is a clseal1 value (key id $kid, the token's), no plaintext"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" || fail "get-resource (sealed)"
cmp -s "$T/secret" "$T/got" || fail "sealed secret differs"
ok "handshake returns the secret sealed under the token key"

# tamper twin: one flipped bit in the last byte of the file
python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[-1] ^= 1
open(p, 'wb').write(bytes(b))
PY
if "$CLI_BIN" kbs get-resource --url "$URL" --path default/key/one > "$T/got" 2>/dev/null; then
    fail "a tampered sealed value was released"
fi
grep -q 'tampered' "$T/kbs.log" || fail "the refusal does not say 'tampered'"
ok "a flipped bit in the stored value is refused, logged as tampered"
stop_kbs

# the wrong PIN: --check and the start both refuse, naming the stage
with_pin "$T/pin.bad"
rc=0; "$KBS_BIN" -c "$T/kbs.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ $rc != 0 ] && grep -q "C_Login: CKR_PIN_INCORRECT" "$T/err" ||
    fail "--check with the wrong PIN (exit $rc): $(cat "$T/err")"
ok "--check refuses the wrong PIN (exit $rc): $(cat "$T/err")"
grep -q 9999 "$T/err" && fail "the PIN is in the message"
rc=0; timeout 20 "$KBS_BIN" -c "$T/kbs.toml" > "$T/start.log" 2>&1 || rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "C_Login: CKR_PIN_INCORRECT" "$T/start.log" ||
    fail "the KBS started with the wrong PIN (exit $rc): $(tail -3 "$T/start.log")"
ok "the KBS with the wrong PIN refuses to start (exit $rc)"

# rotation between token keys: kekf current, kek old → re-wrapped at start, under kekf's key id
with_pin "$T/pin"
start_kbs "$T/kbs.toml"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/key/two --file "$T/secret" \
    || fail "set-resource two"
stop_kbs
with_pin "$T/pin" kekf kek
start_kbs "$T/kbs.toml"
grep -q 're-wrapped under the current encryption key' "$T/kbs.log" || fail "no re-wrap logged"
f2=$(grep -rl "clseal1:$kidf:" "$T/resources" | head -1)
[ -n "$f2" ] || fail "no value under key id $kidf (openssl's): $(grep -rho 'clseal1:[0-9a-f]*' "$T/resources")"
"$CLI_BIN" kbs get-resource --url "$URL" --path default/key/two > "$T/got" || fail "get-resource after rotation"
cmp -s "$T/secret" "$T/got" || fail "secret after rotation differs"
ok "rotation kek → kekf re-wraps at start; the key id $kidf is SHA-256(\"pkcs11:\" || check value), as openssl computes it"
stop_kbs
echo "PASS"
