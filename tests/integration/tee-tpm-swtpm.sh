#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# TPM end to end: swtpm started here, evidence made by Cloister's TPM attester (tpm_tool), a
# full RCAR handshake against cloister-kbs with tee = tpm by an independent client (python:
# JCS + SHA-384, ECDH-ES+A256KW JWE opened with the `cryptography` package), the resource
# released; then a changed PCR, a replayed quote and a foreign AK each refused. Second part:
# the AK enrolled the standard way (TPM2_MakeCredential / ActivateCredential against the EK
# with tpm2-tools), certified by a test CA, and the verifier configured with that CA
# (tpm_verifier.ak_ca_path) refuses every AK it did not certify. Third part: init-data bound
# through PCR8.
. "$(dirname "$0")/lib.sh"
need swtpm tpm2_pcrextend tpm2_createek tpm2_createprimary tpm2_makecredential tpm2_activatecredential \
    tpm2_readpublic tpm2_flushcontext tpm2_startauthsession tpm2_policysecret xxd
python3 -c 'import cryptography' 2>/dev/null || skip "python3 cryptography is not installed"
TOOL=$BUILD/tests/integration/tpm_tool
[ -x "$TOOL" ] || fail "tpm_tool not built at $TOOL"

cat > "$T/rcar.py" <<'PY'
# Independent KBS client for tee = tpm. Usage:
#   rcar.py URL TOOL TCTI PATH [--replay EV] [--save EV] [--ak-cert DER] [--init-data FILE]
# Exit: 0 resource printed; 3 attestation refused; 4 resource refused.
import base64, hashlib, json, subprocess, sys, urllib.request, urllib.error
from http.cookiejar import CookieJar
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

url, tool, tcti, path = sys.argv[1:5]
opts = dict(zip(sys.argv[5::2], sys.argv[6::2]))
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
unb64u = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
jar = CookieJar()
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

def post(p, body):
    req = urllib.request.Request(url + p, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return op.open(req)

chal = json.load(post("/kbs/v0/auth", {"version": "0.4.0", "tee": "tpm", "extra-params": ""}))
nonce = chal["nonce"]
key = ec.generate_private_key(ec.SECP256R1())
n = key.public_key().public_numbers()
jwk = {"alg": "ECDH-ES+A256KW", "crv": "P-256", "kty": "EC",
       "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}
rd = {"additional-evidence": "", "nonce": nonce, "tee-pubkey": jwk}
canon = json.dumps(rd, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
digest = hashlib.sha384(canon.encode()).hexdigest()
if "--replay" in opts:
    ev = json.load(open(opts["--replay"]))
else:
    ev = json.loads(subprocess.check_output([tool, "quote", tcti, digest]))
if "--ak-cert" in opts:
    ev["ak_cert"] = base64.b64encode(open(opts["--ak-cert"], "rb").read()).decode()
if "--save" in opts:
    json.dump(ev, open(opts["--save"], "w"))
att = {"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
       "tee-evidence": {"primary_evidence": ev, "additional_evidence": ""}}
if "--init-data" in opts:
    att["init-data"] = {"format": "toml", "body": open(opts["--init-data"]).read()}
try:
    post("/kbs/v0/attest", att)
except urllib.error.HTTPError as e:
    print("attest refused:", e.code, e.read().decode(), file=sys.stderr)
    sys.exit(3)
try:
    jwe = json.load(op.open(url + "/kbs/v0/resource/" + path))
except urllib.error.HTTPError as e:
    print("resource refused:", e.code, e.read().decode(), file=sys.stderr)
    sys.exit(4)
hdr = json.loads(unb64u(jwe["protected"]))
epk = hdr["epk"]
peer = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64u(epk["x"]), "big"),
                                     int.from_bytes(unb64u(epk["y"]), "big"), ec.SECP256R1()).public_key()
z = key.exchange(ec.ECDH(), peer)
alg = b"ECDH-ES+A256KW"
kek = hashlib.sha256(b"\0\0\0\1" + z + len(alg).to_bytes(4, "big") + alg + b"\0" * 8 + (256).to_bytes(4, "big")).digest()
cek = aes_key_unwrap(kek, unb64u(jwe["encrypted_key"]))
pt = AESGCM(cek).decrypt(unb64u(jwe["iv"]), unb64u(jwe["ciphertext"]) + unb64u(jwe["tag"]), jwe["protected"].encode())
sys.stdout.buffer.write(pt)
PY

rcar() { python3 "$T/rcar.py" "$URL" "$TOOL" "$@"; }

start_swtpm tpmA
start_swtpm tpmB
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
A="--url $URL --admin-key $T/admin.key"
head -c 32 /dev/urandom | base64 > "$T/secret"
"$CLI_BIN" kbs set-resource $A --path tpm/key/one --file "$T/secret" || fail "set-resource"
"$CLI_BIN" kbs set-resource-policy $A --file "$SRC/policies/resource/affirming.rego" || fail "resource policy"

# ---- the owner enrols TPM A: its AK and its PCR11 as reference values ----
"$TOOL" quote "$TCTI_tpmA" 00 > "$T/first.json" || fail "tpm_tool quote on swtpm"
AK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ak_public"])' "$T/first.json")
PCR11=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm_quote"]["pcrs"][11])' "$T/first.json")
"$CLI_BIN" kbs set-reference-value $A --name trusted_aks --value "$AK" || fail "rv trusted_aks"
"$CLI_BIN" kbs set-reference-value $A --name tpm_pcr11 --value "$PCR11" || fail "rv tpm_pcr11"
ok "AK and PCR11 of TPM A registered as reference values"

rcar "$TCTI_tpmA" tpm/key/one --save "$T/evA.json" > "$T/got" || fail "handshake with TPM A evidence"
cmp -s "$T/secret" "$T/got" || fail "released secret differs"
ok "tee = tpm: swtpm quote by the Cloister attester, RCAR handshake, resource released and opened"

# ---- a replayed quote (the previous session's nonce) ----
if rcar "$TCTI_tpmA" tpm/key/one --replay "$T/evA.json" > /dev/null 2> "$T/err"; then fail "replayed quote accepted"; fi
grep -q "attest refused: 401" "$T/err" || fail "replay not refused at attest: $(cat "$T/err")"
grep -q "bind" "$T/kbs.log" || fail "the KBS log does not name the bind stage"
ok "replayed quote refused at attest (stage bind)"

# ---- a foreign AK (another TPM) ----
if rcar "$TCTI_tpmB" tpm/key/one > /dev/null 2> "$T/err"; then fail "foreign AK released the resource"; fi
grep -q "resource refused: 401" "$T/err" || fail "foreign AK: $(cat "$T/err")"
grep -q "PolicyDeny" "$T/err" || fail "foreign AK not a policy denial: $(cat "$T/err")"
ok "evidence signed by an AK that is not in trusted_aks: appraised, resource denied"

# ---- a changed PCR ----
TPM2TOOLS_TCTI=$TCTI_tpmA tpm2_pcrextend "11:sha256=$(printf 'evil' | sha256sum | cut -c1-64)" || fail "pcrextend"
if rcar "$TCTI_tpmA" tpm/key/one > /dev/null 2> "$T/err"; then fail "changed PCR11 released the resource"; fi
grep -q "PolicyDeny" "$T/err" || fail "changed PCR: $(cat "$T/err")"
ok "PCR11 changed after enrolment: resource denied"
stop_kbs

# ---- part two: the AK certified after credential activation with the EK ----
export TPM2TOOLS_TCTI=$TCTI_tpmA
cd "$T"
# swtpm has no resource manager: flush transient objects after each tool that leaves one loaded
tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null || fail "createek"
tpm2_flushcontext -t
tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -c ak.ctx \
    -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' >/dev/null || fail "createprimary AK"
tpm2_flushcontext -t
tpm2_readpublic -c ak.ctx -o ak.pem -f pem -n ak.name >/dev/null || fail "readpublic"
tpm2_flushcontext -t
head -c 32 /dev/urandom > cred.secret
tpm2_makecredential -T none -u ek.pub -s cred.secret -n "$(xxd -p -c 256 ak.name)" -o cred.bin >/dev/null \
    || fail "makecredential"
tpm2_startauthsession --policy-session -S s.ctx && tpm2_policysecret -S s.ctx -c e >/dev/null \
    && tpm2_activatecredential -c ak.ctx -C ek.ctx -i cred.bin -o cred.out -P "session:s.ctx" >/dev/null \
    || fail "activatecredential"
tpm2_flushcontext s.ctx; tpm2_flushcontext -t
cmp -s cred.secret cred.out || fail "credential not recovered: the AK is not in the EK's TPM"
"$TOOL" ak "$TCTI_tpmA" > ak.tool.pem || fail "tpm_tool ak"
cmp -s ak.pem ak.tool.pem || fail "the attester's AK is not the enrolled template"
ok "AK enrolled: TPM2_ActivateCredential against the EK recovers the secret; same AK as the attester's"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=Cloister test AK CA" -days 30 -out ca.pem 2>/dev/null || fail "CA"
openssl req -new -key ca.key -subj "/CN=TPM A attestation key" -out ak.csr 2>/dev/null
openssl x509 -req -in ak.csr -CA ca.pem -CAkey ca.key -force_pubkey ak.pem -set_serial 2 -days 30 \
    -outform DER -out ak.der 2>/dev/null || fail "issue AK certificate"
openssl ecparam -name prime256v1 -genkey -noout -out other.key 2>/dev/null
openssl req -x509 -new -key other.key -subj "/CN=Other CA" -days 30 -out other.pem 2>/dev/null
openssl x509 -req -in ak.csr -CA other.pem -CAkey other.key -force_pubkey ak.pem -set_serial 3 -days 30 \
    -outform DER -out ak.other.der 2>/dev/null || fail "issue AK certificate (other CA)"
cd - >/dev/null
unset TPM2TOOLS_TCTI

PORT=$(free_port)
write_config "$T/kbs2.toml" "$PORT" "
[attestation_service.verifier_config.tpm_verifier]
ak_ca_path = \"$T/ca.pem\""
sed -i "s|$T/store|$T/store2|" "$T/kbs2.toml"
start_kbs "$T/kbs2.toml"
"$CLI_BIN" kbs set-resource $A --url "$URL" --path tpm/key/one --file "$T/secret" || fail "set-resource (2)"
rcar "$TCTI_tpmA" tpm/key/one --ak-cert "$T/ak.der" > "$T/got2" || fail "TPM A with its AK certificate"
cmp -s "$T/secret" "$T/got2" || fail "secret differs (2)"
ok "AK certificate from the configured CA: resource released"
if rcar "$TCTI_tpmA" tpm/key/one > /dev/null 2> "$T/err"; then fail "accepted without an AK certificate"; fi
grep -q "attest refused" "$T/err" || fail "no AK certificate: $(cat "$T/err")"
if rcar "$TCTI_tpmA" tpm/key/one --ak-cert "$T/ak.other.der" > /dev/null 2> "$T/err"; then fail "other CA accepted"; fi
grep -q "attest refused" "$T/err" || fail "other CA: $(cat "$T/err")"
if rcar "$TCTI_tpmB" tpm/key/one --ak-cert "$T/ak.der" > /dev/null 2> "$T/err"; then fail "foreign AK accepted"; fi
grep -q "attest refused" "$T/err" || fail "foreign AK with A's certificate: $(cat "$T/err")"
grep -q "chain" "$T/kbs.log" || fail "the KBS log does not name the chain stage"
ok "no certificate, a certificate from another CA, a foreign AK with A's certificate: refused at attest (chain)"

# ---- part three: init-data bound through PCR8 ----
printf 'algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"note" = "tpm test"\n' > "$T/init.toml"
IDD=$(sha256sum "$T/init.toml" | cut -c1-64)
TPM2TOOLS_TCTI=$TCTI_tpmA tpm2_pcrextend "8:sha256=$IDD" || fail "pcrextend 8"
rcar "$TCTI_tpmA" tpm/key/one --ak-cert "$T/ak.der" --init-data "$T/init.toml" > "$T/got3" \
    || fail "init-data in PCR8 refused"
cmp -s "$T/secret" "$T/got3" || fail "secret differs (3)"
printf 'algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"note" = "other"\n' > "$T/other.toml"
if rcar "$TCTI_tpmA" tpm/key/one --ak-cert "$T/ak.der" --init-data "$T/other.toml" > /dev/null 2> "$T/err"; then
    fail "init-data not in PCR8 accepted"
fi
grep -q "init-data" "$T/kbs.log" || fail "the KBS log does not name the init-data stage"
ok "init-data extended into PCR8 is accepted; another init-data is refused (stage init-data)"
# ---- the offline verifier CLI on the same evidence ----
RD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm_quote"]["message"])' "$T/evA.json" \
    | base64 -d | python3 -c 'import sys; m=sys.stdin.buffer.read(); n=int.from_bytes(m[6:8],"big"); o=8+n; l=int.from_bytes(m[o:o+2],"big"); print(m[o+2:o+2+l].hex())')
"$CLI_BIN" as verify --tee tpm --evidence "$T/evA.json" --report-data "$RD" > "$T/claims.json" 2> "$T/err" \
    || fail "cloister as verify on the saved evidence: $(cat "$T/err")"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert len([k for k in c if k.startswith("pcr")])==24 and c["ak_public"]' \
    "$T/claims.json" || fail "CLI claims"
if "$CLI_BIN" as verify --tee tpm --evidence "$T/evA.json" --report-data 00 2> "$T/err"; then fail "CLI accepted wrong report data"; fi
grep -q "stage 'bind'" "$T/err" || fail "CLI does not name the stage: $(cat "$T/err")"
ok "cloister as verify prints the claims, and names the stage that refused"
echo "PASS"
