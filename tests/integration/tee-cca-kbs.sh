#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CCA verifier reached through the KBS protocol: cloister-kbs on loopback with trustee's
# CCA trust-anchor and reference-value stores; an independent client (curl + python3
# `cryptography`) asks for a challenge with "tee": "cca", computes the runtime-data digest
# (JCS + SHA-384), re-signs trustee's example token around it with the vectors' public test
# RAK key (no CCA hardware here; the CPAK-signed platform token is the vector's own) and
# attests. Twins: the same token in a second session (another nonce) and the vector token with
# its recorded challenge are both refused with 401.
. "$(dirname "$0")/lib.sh"

V=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-$SRC/../shared/vectors}}/trustee
C=$V/deps/verifier/test_data/cca
[ -f "$C/misc/cca-example-token.cbor" ] || skip "trustee vectors not found"
python3 -c 'import cryptography' 2>/dev/null || skip "python3 cryptography is not installed"

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "
[attestation_service.verifier_config.cca_verifier]
ta_store = \"$C/conf/tastore.json\"
rv_store = \"$C/conf/rvstore.json\""
start_kbs "$T/kbs.toml"

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null > "$T/tee.key"

# attest JAR OUT [token-file]: one RCAR round; OUT gets the /attest body, prints the status
attest() {
    st=$(curl -sS -c "$T/$1" -o "$T/chal" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"version":"0.4.0","tee":"cca","extra-params":""}' "$URL/kbs/v0/auth")
    [ "$st" = 200 ] || fail "auth with tee cca: status $st ($(cat "$T/chal"))"
    python3 - "$T/chal" "$T/tee.key" "$C" "$T/attest.json" "${3:-}" <<'PY' || fail "client"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

chal, keyfile, cca, out, reuse = sys.argv[1:6]
nonce = json.load(open(chal))["nonce"]
key = serialization.load_pem_private_key(open(keyfile, "rb").read(), None)
nums = key.public_key().public_numbers()
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
jwk = {"alg": "ECDH-ES+A256KW", "crv": "P-256", "kty": "EC",
       "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}
rd = {"additional-evidence": "", "nonce": nonce, "tee-pubkey": jwk}
digest = hashlib.sha384(json.dumps(rd, sort_keys=True, separators=(",", ":")).encode()).digest()

def head(b, i):  # (major, argument, next offset) of the CBOR head at i
    ai = b[i] & 31
    if ai < 24:
        return b[i] >> 5, ai, i + 1
    n = 1 << (ai - 24)
    return b[i] >> 5, int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n

def enc_bstr(x):
    n = len(x)
    h = bytes([0x40 | n]) if n < 24 else bytes([0x58, n]) if n < 256 else bytes([0x59]) + n.to_bytes(2, "big")
    return h + x

if reuse:
    tok = bytearray(open(reuse, "rb").read())
else:
    tok = bytearray(open(cca + "/misc/cca-example-token.cbor", "rb").read())
    # realm COSE_Sign1 = the last member of the collection: [protected, {}, payload, signature]
    m, _, i = head(tok, 0)           # tag 399
    m, n, i = head(tok, i)           # map of 2
    _, _, i = head(tok, i)           # key 44234
    _, ln, i = head(tok, i); i += ln  # platform token
    _, _, i = head(tok, i)           # key 44241
    _, ln, i = head(tok, i)          # realm token bstr
    m, tag, j = head(tok, i)
    if m == 6:
        i = j
    _, _, i = head(tok, i)           # array(4)
    _, pl, i = head(tok, i); prot = bytes(tok[i:i + pl]); i += pl
    _, _, i = head(tok, i)           # unprotected {}
    _, pl, i = head(tok, i); pstart = i; payload_len = pl; i += pl
    _, sl, i = head(tok, i); sig_at = i
    payload = tok[pstart:pstart + payload_len]
    # the realm challenge: key 10 → bstr(64) at the start of the claims map
    k = payload.find(bytes([0x0a, 0x58, 0x40]))
    payload[k + 3:k + 67] = digest + bytes(16)
    tok[pstart:pstart + payload_len] = payload
    rak = json.load(open(cca + "/misc/rak-priv.json"))
    d = int.from_bytes(base64.urlsafe_b64decode(rak["d"] + "=="), "big")
    priv = ec.derive_private_key(d, ec.SECP384R1())
    tbs = bytes([0x84, 0x6a]) + b"Signature1" + enc_bstr(prot) + b"\x40" + enc_bstr(bytes(payload))
    r, s = decode_dss_signature(priv.sign(tbs, ec.ECDSA(hashes.SHA384())))
    tok[sig_at:sig_at + 96] = r.to_bytes(48, "big") + s.to_bytes(48, "big")
open(out + ".cbor", "wb").write(tok)
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": {"token": list(tok)}, "additional_evidence": ""}}, open(out, "w"))
PY
    curl -sS -b "$T/$1" -o "$T/$2" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data @"$T/attest.json" "$URL/kbs/v0/attest"
}

st=$(attest jar1 tok1)
expect_status 200 "$st" "attest with a CCA token bound to the session's runtime data"
python3 - "$T/tok1" <<'PY' || fail "EAR token"
import base64, json, sys
tok = json.load(open(sys.argv[1]))["token"]
p = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
ann = p["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
assert ann["cca"]["realm"]["cca-realm-initial-measurement"].startswith("rof79/EF5"), ann["cca"]["realm"]
assert ann["cca"]["platform"]["cca-platform-lifecycle"] == 12291
assert len(ann["report_data"]) == 128 and ann["report_data"].endswith("0" * 32)
PY
ok "EAR carries the CCA realm and platform claims and the bound report data"
cp "$T/attest.json.cbor" "$T/bound.cbor"

st=$(attest jar2 tok2 "$T/bound.cbor")
expect_status 401 "$st" "the same token replayed in a new session (other nonce)"
grep -q "bind" "$T/kbs.log" || fail "the KBS log does not name the bind stage"

st=$(attest jar3 tok3 "$C/misc/cca-example-token.cbor")
expect_status 401 "$st" "the vector token with its recorded challenge"
ok "cca through the KBS protocol"
