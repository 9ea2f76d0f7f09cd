#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Online certificate and collateral fetching, against local stand-ins for AMD KDS and Intel
# PCS/PCCS (python http.server on loopback serving the vector files at the vendors' paths):
# `cloister as verify` fetches the Genoa VCEK and chain, verifies, writes them to the cache,
# and verifies again offline from the cache alone; a KDS answering garbage is refused at the
# chain stage; TDX collateral is fetched with its issuer chain from the response header and
# written to the collateral folder (whose chain, not Intel's, is then refused at collateral).
. "$(dirname "$0")/lib.sh"
V=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-$SRC/../shared/vectors}}/trustee
[ -d "$V" ] || skip "trustee vectors absent"
VT=$V/deps/verifier/test_data
AT=1748736000

# ---- the stand-in vendor service ----
python3 - "$T/www" "$V" <<'PY'
import json, os, sys, base64
www, v = sys.argv[1], sys.argv[2]
ev = json.load(open(f"{v}/attestation-service/tests/e2e/evidence.json"))
r = ev["attestation_report"]
hwid = bytes(r["chip_id"]).hex()
os.makedirs(f"{www}/vcek/v1/Genoa", exist_ok=True)
open(f"{www}/vcek/v1/Genoa/{hwid}", "wb").write(bytes(ev["cert_chain"][0]["data"]))
open(f"{www}/vcek/v1/Genoa/cert_chain", "wb").write(open(f"{v}/deps/verifier/src/snp/genoa_ask_ark_asvk.pem", "rb").read())
# a KDS that answers with another chip's VCEK (of the same generation: the chain holds)
az = open(f"{v}/deps/verifier/test_data/az-snp-vtpm/vcek-genoa.pem").read()
der = base64.b64decode("".join(az.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0].split()))
os.makedirs(f"{www}/wrong/vcek/v1/Genoa", exist_ok=True)
open(f"{www}/wrong/vcek/v1/Genoa/{hwid}", "wb").write(der)
open(f"{www}/wrong/vcek/v1/Genoa/cert_chain", "wb").write(open(f"{v}/deps/verifier/src/snp/genoa_ask_ark_asvk.pem", "rb").read())
ev["cert_chain"] = None
json.dump(ev, open(f"{www}/../evidence-nochain.json", "w"))
open(f"{www}/../rd", "w").write(bytes(r["report_data"]).hex())
PY
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ca.key" 2>/dev/null
openssl req -x509 -new -key "$T/ca.key" -subj "/CN=Not Intel" -days 3650 -out "$T/root.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/signer.key" 2>/dev/null
openssl req -new -key "$T/signer.key" -subj "/CN=Not Intel TCB Signing" -out "$T/signer.csr" 2>/dev/null
openssl x509 -req -in "$T/signer.csr" -CA "$T/root.pem" -CAkey "$T/ca.key" -set_serial 5 -days 3650 \
    -out "$T/signer.pem" 2>/dev/null
cat "$T/signer.pem" "$T/root.pem" > "$T/ca.pem"
cat > "$T/server.py" <<'PY'
import http.server, sys, urllib.parse, os
www, chain = sys.argv[1], open(sys.argv[2]).read()
tdx = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        hdr = None
        if u.path == "/tdx/certification/v4/tcb":
            body, hdr = open(f"{tdx}/tcbInfo.json", "rb").read(), "TCB-Info-Issuer-Chain"
        elif u.path == "/tdx/certification/v4/qe/identity":
            body, hdr = open(f"{tdx}/enclaveIdentity.json", "rb").read(), "SGX-Enclave-Identity-Issuer-Chain"
        elif u.path == "/garbage/vcek/v1/Genoa/cert_chain" or u.path.startswith("/garbage/"):
            body = b"not a certificate"
        else:
            p = os.path.join(www, u.path.lstrip("/"))
            if not os.path.isfile(p):
                self.send_response(404); self.end_headers(); return
            body = open(p, "rb").read()
        self.send_response(200)
        if hdr:
            self.send_header(hdr, urllib.parse.quote(chain))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[4])), H).serve_forever()
PY
PORT=$(free_port)
python3 "$T/server.py" "$T/www" "$T/ca.pem" "$VT" "$PORT" &
PIDS="$PIDS $!"
i=0; until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/vcek/v1/Genoa/cert_chain" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "stand-in vendor service did not start"; sleep 0.1; done

# ---- SNP: VCEK and chain from KDS, then from the cache alone ----
RD=$(cat "$T/rd")
"$CLI_BIN" as verify --tee snp --evidence "$T/evidence-nochain.json" --report-data "$RD" --at $AT \
    --kds="http://127.0.0.1:$PORT" --snp-cache "$T/cache" > "$T/claims" 2> "$T/err" || fail "KDS fetch: $(cat "$T/err")"
ls "$T"/cache/vcek/*/bl10_tee00_snp23_ucode25_vcek.der > /dev/null 2>&1 || fail "VCEK not cached: $(find "$T/cache")"
[ -f "$T/cache/Genoa/cert_chain.pem" ] || fail "chain not cached"
ok "SNP: VCEK and ASK/ARK fetched from the KDS stand-in, verified, cached in the KDS layout"
"$CLI_BIN" as verify --tee snp --evidence "$T/evidence-nochain.json" --report-data "$RD" --at $AT \
    --snp-cache "$T/cache" > /dev/null 2> "$T/err" || fail "verify from cache: $(cat "$T/err")"
ok "SNP: verified again offline from the cache alone"
if "$CLI_BIN" as verify --tee snp --evidence "$T/evidence-nochain.json" --report-data "$RD" --at $AT \
    --kds="http://127.0.0.1:$PORT/garbage" --snp-cache "$T/cache2" > /dev/null 2> "$T/err"; then
    fail "garbage from KDS accepted"
fi
grep -q "stage 'chain'" "$T/err" || fail "garbage KDS answer: $(cat "$T/err")"
[ ! -e "$T/cache2/vcek" ] || fail "a refused KDS answer was cached"
ok "SNP: a KDS answering garbage is refused at the chain stage and nothing is cached"
if "$CLI_BIN" as verify --tee snp --evidence "$T/evidence-nochain.json" --report-data "$RD" --at $AT \
    --kds="http://127.0.0.1:$PORT/wrong" --snp-cache "$T/cache3" > /dev/null 2> "$T/err"; then
    fail "another chip's VCEK accepted"
fi
grep -q "stage 'signature'" "$T/err" || fail "another chip's VCEK: $(cat "$T/err")"
[ ! -e "$T/cache3/vcek" ] || fail "a VCEK that did not verify the report was cached"
ok "SNP: a KDS answering another chip's VCEK: refused at signature, nothing cached"

# ---- TDX: collateral fetched from the PCCS stand-in ----
if "$CLI_BIN" as verify --tee tdx --evidence "$VT/tdx_quote_6.dat" --at 1761955200 \
    --pccs "http://127.0.0.1:$PORT" --tdx-collateral "$T/coll" > /dev/null 2> "$T/err"; then
    fail "collateral signed by a non-Intel chain accepted"
fi
grep -q "stage 'collateral'" "$T/err" || fail "TDX with PCCS: $(cat "$T/err")"
grep -q "not Intel's pinned" "$T/err" || fail "TDX: the refusal is not the pinned root: $(cat "$T/err")"
cmp -s "$T/coll/tcb_info_00a06d080000.json" "$VT/tcbInfo.json" || fail "TCB info not written to the folder"
cmp -s "$T/coll/tcb_info_issuer_chain.pem" "$T/ca.pem" || fail "issuer chain header not decoded and written"
[ -f "$T/coll/qe_identity.json" ] || fail "QE identity not written"
ok "TDX: TCB info, QE identity and the issuer chain header fetched and written; a non-Intel chain refused"
echo "PASS"
