#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# trustee's own KBS configuration files through `cloister-kbs --check`: each one is either
# accepted (exit 0, effective configuration printed as JSON in trustee's key names) or refused
# with exit 2 naming every key Cloister does not support by its dotted path and file:line.
# Twins: a typo in a key makes --check and the daemon itself fail naming the key; a --check
# that names a missing file fails. Needs the vectors (exit 77 without them).
. "$(dirname "$0")/lib.sh"

V=${CLOISTER_VECTORS:-/work/shared/vectors}/trustee/kbs
[ -d "$V/test_data/configs" ] || skip "trustee vectors not found at $V"

# trustee's test configs name ./work/...: provide those files in a scratch directory
mkdir -p "$T/run/work/storage" "$T/run/work/attestation-service/tpm_trusted_keys"
cd "$T/run"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout work/https.key -out work/https.crt \
    -days 2 -subj "/CN=127.0.0.1" 2>/dev/null
cp work/https.crt work/ca-cert.pem
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out work/token.key 2>/dev/null
openssl req -x509 -key work/token.key -out work/token-cert-chain.pem -days 2 -subj "/CN=token" 2>/dev/null
openssl genpkey -algorithm ed25519 -out work/kbs.key 2>/dev/null
openssl pkey -in work/kbs.key -pubout -out work/kbs.pem 2>/dev/null

# check FILE WANT_RC [KEY...]: --check exits WANT_RC; with 2, stderr names each KEY with file:line
check() {
    f=$1; want=$2; shift 2
    rc=0
    "$KBS_BIN" -c "$f" --check > "$T/out.json" 2> "$T/err" || rc=$?
    [ "$rc" = "$want" ] || fail "$(basename "$f"): --check exit $rc, wanted $want: $(tail -3 "$T/err")"
    for k in "$@"; do
        grep -F "$k" "$T/err" | grep -Eq "$(basename "$f"):[0-9]+: " ||
            fail "$(basename "$f"): refusal of $k not named with file:line: $(cat "$T/err")"
    done
    if [ "$want" = 0 ]; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "http_server" in d and "admin" in d' \
            "$T/out.json" || fail "$(basename "$f"): --check output is not the effective configuration"
    fi
    ok "$(basename "$f") --check => $rc ${*:+(refused: $*)}"
}

check "$V/config/kbs-config.toml" 0
check "$V/test/config/resource-kbs.toml" 0
check "$V/test_data/configs/coco-as-builtin-3.toml" 2 'storage_backend.storage_type = "LocalJson" is not supported'
check "$V/test/config/kbs.toml" 2 attestation_service.verifier_config.tpm_verifier.trusted_ak_keys_dir \
    attestation_service.verifier_config.tpm_verifier.max_trusted_ak_keys
check "$V/test/config/external-plugin.toml" 2 'plugins[0].name = "external"'
check "$V/test_data/configs/coco-as-builtin-1.toml" 2 'attestation_service.rvps_config.type = "GrpcRemote"'
check "$V/test_data/configs/coco-as-grpc-1.toml" 2 'attestation_service.type = "coco_as_grpc" is not supported' \
    'plugins[0].name = "sample"'
check "$V/test_data/configs/intel-ta-1.toml" 2 'attestation_service.type = "intel_ta"' 'plugins[0].name = "sample"'
check "$V/test_data/configs/tls-profile-custom.toml" 2 'attestation_service.type = "coco_as_grpc"'
check "$V/test_data/configs/tls-profile-intermediate.toml" 2 'attestation_service.type = "coco_as_grpc"'

# the effective configuration: trustee's structure, defaults filled in
"$KBS_BIN" -c "$V/test/config/resource-kbs.toml" --check > "$T/eff.json" 2>/dev/null
python3 - "$T/eff.json" <<'PY' || fail "effective configuration of resource-kbs.toml is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["http_server"]["sockets"] == ["127.0.0.1:50002"], d["http_server"]
assert d["http_server"]["tls_profile"] == "intermediate"
assert d["http_server"]["payload_request_size"] == 2
assert d["admin"]["authorization_mode"] == "AuthenticatedAuthorization"
ip = d["admin"]["authentication"]["bearer_jwt"]["identity_providers"][0]
assert ip["issuer"] == "issuer" and ip["audience"] == "kbs", ip
assert d["admin"]["authorization"]["regex_acl"]["acls"][0]["role"] == "admin"
assert d["attestation_token"]["trusted_certs_paths"] == ["./work/ca-cert.pem"]
assert d["attestation_service"]["attestation_token_broker"]["duration_min"] == 5
PY
ok "--check prints the effective configuration in trustee's key names, defaults filled in"

# trustee's TLS custom profile with the built-in AS is accepted and keeps its settings
sed 's/type = "coco_as_grpc"/type = "coco_as_builtin"/; /^as_addr/d' "$V/test_data/configs/tls-profile-custom.toml" |
    sed "s|/etc/kbs-private.key|$T/run/work/https.key|; s|/etc/kbs-cert.pem|$T/run/work/https.crt|" > "$T/tls-custom.toml"
"$KBS_BIN" -c "$T/tls-custom.toml" --check > "$T/eff.json" 2> "$T/err" || fail "tls custom: $(cat "$T/err")"
grep -q '"tls_min_version": "1.3"' "$T/eff.json" || fail "tls_min_version lost"
grep -q '"tls_groups": "X25519:secp384r1"' "$T/eff.json" || fail "tls_groups lost"
ok "trustee's tls-profile-custom.toml (with the built-in AS) is accepted with its TLS settings"

# ---- twins ----
# a typo in a key: --check and the daemon both refuse, naming the key and its line
sed 's/^insecure_header_jwk = true/insecure_header_jwt = true/' "$V/config/kbs-config.toml" > "$T/typo.toml"
grep -q insecure_header_jwt "$T/typo.toml" || fail "setup: typo not made"
line=$(grep -n insecure_header_jwt "$T/typo.toml" | cut -d: -f1)
rc=0; "$KBS_BIN" -c "$T/typo.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ $rc = 2 ] || fail "typo: --check exit $rc"
grep -q "typo.toml:$line: 'attestation_token.insecure_header_jwt' is not a key" "$T/err" || fail "typo not named: $(cat "$T/err")"
sed -i "s|^insecure_http = true|insecure_http = true\nsockets = [\"127.0.0.1:$(free_port)\"]|; s|/opt/confidential-containers/storage|$T/store|" "$T/typo.toml"
rc=0; timeout 10 "$KBS_BIN" -c "$T/typo.toml" > /dev/null 2> "$T/err" || rc=$?
[ $rc = 2 ] || fail "typo: the daemon started or exited $rc"
grep -q "insecure_header_jwt" "$T/err" || fail "daemon: typo not named: $(cat "$T/err")"
ok "a typo in a key fails --check and the daemon (exit 2, key and file:line named)"

# unsupported values refused by name
cat > "$T/vault.toml" <<CFG
[http_server]
insecure_http = true
tls_groups = "X25519MLKEM768"
[attestation_service.rvps_config]
type = "BuiltIn"
storage = { type = "LocalFs" }
[[plugins]]
name = "resource"
storage_backend_type = "Vault"
CFG
rc=0; "$KBS_BIN" -c "$T/vault.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ $rc = 2 ] || fail "vault: exit $rc"
for k in 'plugins[0].storage_backend_type = "Vault"' attestation_service.rvps_config.storage \
    'group "X25519MLKEM768"'; do
    grep -F "$k" "$T/err" | grep -q 'vault.toml:[0-9]*:' || fail "not refused by name: $k: $(cat "$T/err")"
done
grep -q '3 keys refused' "$T/err" || fail "refusals not counted: $(cat "$T/err")"
ok "Vault resource backend, rvps_config.storage, an ML-KEM TLS group: each refused by name"

# --check reads the files the configuration names
sed 's|./work/kbs.pem|./work/missing.pem|' "$V/test/config/resource-kbs.toml" > "$T/missing.toml"
if "$KBS_BIN" -c "$T/missing.toml" --check > /dev/null 2> "$T/err"; then fail "--check passed a missing key file"; fi
grep -q 'public_key_uri' "$T/err" || fail "missing file not named: $(cat "$T/err")"
ok "--check fails on a file the configuration names but that is missing"
printf '[http_server]\ninsecure_http = true\n[attestation_service.verifier_config.tpm_verifier]\nak_ca_path = "%s/none.pem"\n' "$T" > "$T/tpm.toml"
if "$KBS_BIN" -c "$T/tpm.toml" --check > /dev/null 2> "$T/err"; then fail "--check passed a missing ak_ca_path"; fi
grep -q 'tpm_verifier.ak_ca_path' "$T/err" || fail "missing ak_ca_path not named: $(cat "$T/err")"
cp "$T/run/work/ca-cert.pem" "$T/none.pem"
"$KBS_BIN" -c "$T/tpm.toml" --check > /dev/null 2> "$T/err" || fail "ak_ca_path present: $(cat "$T/err")"
ok "--check reads verifier files (tpm_verifier.ak_ca_path): missing → refused by key, present → accepted"
