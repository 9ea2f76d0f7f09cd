#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# NVIDIA and SGX evidence end to end with the real binaries:
#  * `cloister as verify --tee nvidia` on trustee's Hopper report: the claims equal trustee's
#    expected claims (compared by python, not by Cloister); the chain without intermediate and a
#    wrong nonce are refused at their stage with exit status 4; `--tee sgx` on the Occlum quote
#    is refused at the collateral stage when none is configured, at bind with other report data;
#    its collateral is fetched from a PCCS stand-in at the SGX paths and written to the folder.
#  * cloister-kbs with device evidence in the KBS protocol (an independent python client):
#    sampledevice as additional evidence gives submods cpu0 + gpu0; the captured NVIDIA report as
#    additional evidence of a fresh session is refused (401), the log naming nvidia and bind;
#    tee "sgx" as primary reaches the sgx verifier (a replayed quote refused at bind).
. "$(dirname "$0")/lib.sh"
V=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-$SRC/../shared/vectors}}/trustee
[ -d "$V" ] || skip "trustee vectors absent"
python3 -c 'import cryptography' 2>/dev/null || skip "python3 cryptography is not installed"
VT=$V/deps/verifier/test_data
NV=$VT/nvidia
AT=1748736000
NONCE=931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb

# ---- cloister as verify ----
"$CLI_BIN" as verify --help | grep -q 'nvidia, sgx' || fail "--help does not list nvidia and sgx"
"$CLI_BIN" as verify --tee nvidia --evidence "$NV/hopperAttestationReport.txt" --cert "$NV/hopper_cert_chain_case1.txt" \
    --report-data "$NONCE" --at $AT > "$T/claims.json" 2> "$T/err" || fail "nvidia vector refused: $(cat "$T/err")"
python3 - "$T/claims.json" "$NV/hopperAttestationReport-claims.txt" <<'PY' || fail "nvidia claims differ from trustee's"
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
want.pop("uuid")  # the raw report carries no uuid
assert got == want, (sorted(got), sorted(want))
PY
ok "nvidia: trustee's Hopper report verified, claims equal trustee's"
rc=0
"$CLI_BIN" as verify --tee nvidia --evidence "$NV/hopperAttestationReport.txt" --cert "$NV/hopper_cert_chain_case3.txt" \
    --report-data "$NONCE" --at $AT > /dev/null 2> "$T/err" || rc=$?
[ $rc = 4 ] && grep -q "stage 'chain'" "$T/err" || fail "chain without intermediate: rc $rc $(cat "$T/err")"
rc=0
"$CLI_BIN" as verify --tee nvidia --evidence "$NV/hopperAttestationReport.txt" --cert "$NV/hopper_cert_chain_case1.txt" \
    --report-data "00$(echo $NONCE | cut -c3-)" --at $AT > /dev/null 2> "$T/err" || rc=$?
[ $rc = 4 ] && grep -q "stage 'bind'" "$T/err" || fail "wrong nonce: rc $rc $(cat "$T/err")"
ok "nvidia: missing intermediate refused at chain, wrong nonce at bind (exit 4)"
rc=0
"$CLI_BIN" as verify --tee sgx --evidence "$VT/occlum_quote.dat" --report-data 74657374 --at $AT \
    --allow-debug-insecure > /dev/null 2> "$T/err" || rc=$?
[ $rc != 0 ] && grep -q "stage 'collateral'" "$T/err" || fail "sgx without collateral: rc $rc $(cat "$T/err")"
rc=0
"$CLI_BIN" as verify --tee sgx --evidence "$VT/occlum_quote.dat" --report-data 74657375 --at $AT > /dev/null 2> "$T/err" || rc=$?
[ $rc = 4 ] && grep -q "stage 'bind'" "$T/err" || fail "sgx other report data: rc $rc $(cat "$T/err")"
ok "sgx: Occlum quote refused at collateral with none configured, at bind with other report data"

# SGX collateral from a PCCS stand-in (SGX paths; a non-Intel issuer chain, so refused at
# collateral after being fetched and written to the folder)
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ca.key" 2>/dev/null
openssl req -x509 -new -key "$T/ca.key" -subj "/CN=Not Intel" -days 3650 -out "$T/root.pem" 2>/dev/null
cat "$T/root.pem" "$T/root.pem" > "$T/chain.pem"
cat > "$T/pccs.py" <<'PY'
import http.server, sys, urllib.parse
chain = open(sys.argv[1]).read()
docs = {"/sgx/certification/v4/tcb": ("TCB-Info-Issuer-Chain", b'{"tcbInfo":{"id":"SGX","version":3},"signature":"00"}'),
        "/sgx/certification/v4/qe/identity": ("SGX-Enclave-Identity-Issuer-Chain",
                                              b'{"enclaveIdentity":{"id":"QE","version":2},"signature":"00"}')}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path not in docs:
            self.send_response(404); self.end_headers(); return
        hdr, body = docs[u.path]
        self.send_response(200)
        self.send_header(hdr, urllib.parse.quote(chain))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
PY
PP=$(free_port)
python3 "$T/pccs.py" "$T/chain.pem" "$PP" &
PIDS="$PIDS $!"
i=0; until curl -s -o /dev/null "http://127.0.0.1:$PP/" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "PCCS stand-in did not start"; sleep 0.1; done
rc=0
"$CLI_BIN" as verify --tee sgx --evidence "$VT/occlum_quote.dat" --report-data 74657374 --at $AT --allow-debug-insecure \
    --pccs "http://127.0.0.1:$PP" --sgx-collateral "$T/sgxcoll" > /dev/null 2> "$T/err" || rc=$?
[ $rc != 0 ] && grep -q "stage 'collateral'" "$T/err" && grep -q "not Intel's pinned" "$T/err" \
    || fail "sgx with PCCS: rc $rc $(cat "$T/err")"
[ -f "$T/sgxcoll/tcb_info_00606a000000.json" ] && [ -f "$T/sgxcoll/qe_identity.json" ] \
    || fail "SGX collateral not written: $(ls "$T/sgxcoll" 2>&1)"
cmp -s "$T/sgxcoll/tcb_info_issuer_chain.pem" "$T/chain.pem" || fail "SGX issuer chain header not written"
ok "sgx: TCB info and QE identity fetched from the PCCS's sgx paths and written; a non-Intel chain refused"

# ---- the KBS protocol with additional (device) evidence ----
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "[attestation_service.verifier_config]
verify_time_insecure = $AT"
start_kbs "$T/kbs.toml"
attest() { # attest DEVICE_KIND OUT: auth + attest with an independent client; prints the status
    curl -sS -c "$T/jar.$1" -o "$T/chal.$1" -H 'Content-Type: application/json' \
        -d '{"version":"0.4.0","tee":"sample","extra-params":""}' "$URL/kbs/v0/auth" > /dev/null
    python3 - "$1" "$T/chal.$1" "$T/attest.$1" "$NV" <<'PY'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric import ec
kind, chal, out, nv = sys.argv[1:5]
nonce = json.load(open(chal))["nonce"]
pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
jwk = {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
       "x": b64u(pub.x.to_bytes(32, "big")), "y": b64u(pub.y.to_bytes(32, "big"))}
jcs = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
dev_digest = hashlib.sha384(jcs({"nonce": nonce, "tee-pubkey": jwk})).digest()
if kind == "sampledevice":
    dev = {"svn": "1", "report_data": base64.b64encode(dev_digest).decode()}
else:  # the captured Hopper report: its nonce is not this session's
    dev = {"device_evidence_list": [{"arch": "HOPPER", "uuid": "GPU-0",
           "evidence": open(f"{nv}/hopperAttestationReport.txt").read().strip(),
           "certificate": base64.b64encode(open(f"{nv}/hopper_cert_chain_case1.txt", "rb").read()).decode()}]}
additional = json.dumps({kind: dev})
digest = hashlib.sha384(jcs({"nonce": nonce, "tee-pubkey": jwk, "additional-evidence": additional})).digest()
prim = {"svn": "1", "report_data": base64.b64encode(digest).decode()}
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": prim, "additional_evidence": additional}}, open(out, "w"))
PY
    curl -sS -b "$T/jar.$1" -o "$T/tok.$1" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data @"$T/attest.$1" "$URL/kbs/v0/attest"
}
st=$(attest sampledevice)
expect_status 200 "$st" "attest with sampledevice additional evidence"
python3 - "$T/tok.sampledevice" <<'PY' || fail "token lacks cpu0 + gpu0"
import base64, json, sys
p = json.load(open(sys.argv[1]))["token"].split(".")[1]
body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
assert set(body["submods"]) == {"cpu0", "gpu0"}, body["submods"].keys()
assert "sampledevice" in body["submods"]["gpu0"]["ear.veraison.annotated-evidence"]
PY
ok "KBS: additional evidence appraised into the gpu0 submod"
st=$(attest nvidia)
expect_status 401 "$st" "attest with a replayed NVIDIA report"
grep -q 'nvidia' "$T/kbs.log" && grep -q 'bind' "$T/kbs.log" || fail "the KBS log does not name nvidia/bind"
ok "KBS: a captured NVIDIA report in a fresh session refused at bind (401)"

# an SGX primary (tee "sgx", evidence {"quote": base64}) reaches the sgx verifier: the captured
# Occlum quote does not bind this session's runtime data
curl -sS -c "$T/jar.sgx" -o "$T/chal.sgx" -H 'Content-Type: application/json' \
    -d '{"version":"0.4.0","tee":"sgx","extra-params":""}' "$URL/kbs/v0/auth" > /dev/null
python3 - "$T/chal.sgx" "$VT/occlum_quote.dat" "$T/attest.sgx" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives.asymmetric import ec
nonce = json.load(open(sys.argv[1]))["nonce"]
pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
jwk = {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
       "x": b64u(pub.x.to_bytes(32, "big")), "y": b64u(pub.y.to_bytes(32, "big"))}
quote = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": {"quote": quote}, "additional_evidence": ""}}, open(sys.argv[3], "w"))
PY
st=$(curl -sS -b "$T/jar.sgx" -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data @"$T/attest.sgx" "$URL/kbs/v0/attest")
expect_status 401 "$st" "attest with a replayed SGX quote"
grep 'sgx verifier' "$T/kbs.log" | grep -q 'REPORTDATA' || fail "the KBS log does not name the sgx verifier: $(tail -5 "$T/kbs.log")"
ok "KBS: tee sgx routed to the sgx verifier, a replayed quote refused at bind (401)"
