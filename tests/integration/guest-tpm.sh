#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The tpm attester end to end with real processes: swtpm (socket TCTI on random loopback
# ports), cloister-kbs with no _insecure switch (tpm has a real verifier), cloister-aa that
# detects the TPM from its TCTI and binds sha256 init-data into PCR8, cloister-cdh with its
# REST bridge. The owner enrols the AK (derived independently with tpm2-tools) as the
# reference value trusted_aks and PCR11 as tpm_pcr11, as policies/attestation/default_cpu.rego
# expects, and releases resources under policies/resource/affirming.rego. The evidence is
# checked with independent tools (python parses TPMS_ATTEST, openssl verifies the AK
# signature, tpm2_pcrread reads the PCRs). Twins: an AK the owner did not enrol (another
# swtpm) is appraised but not affirming and refused; a PCR extended after the fact changes
# the PCR values and the appraisal; swtpm killed mid-way (during a quote, then between
# requests) gives clean errors while the daemons stay up, and the agent recovers when the TPM
# returns.
. "$(dirname "$0")/lib.sh"
AA_BIN=$BUILD/src/cmd/cloister-aa
CDH_BIN=$BUILD/src/cmd/cloister-cdh
[ -x "$AA_BIN" ] && [ -x "$CDH_BIN" ] || fail "cloister-aa / cloister-cdh not built"
command -v swtpm >/dev/null 2>&1 || skip "swtpm is not installed (apt-get install swtpm swtpm-tools): no TPM to attest"
need tpm2_pcrread tpm2_pcrextend tpm2_createprimary tpm2_readpublic tpm2_flushcontext
export TSS2_LOG=all+none # tss2's own stderr lines; the daemons' errors are what is checked

start_swtpm A
start_swtpm B

# ---- the KBS: tpm accepted without any _insecure switch ----
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
sed -i '/allow_sample_tee_insecure/d' "$T/kbs.toml"
! grep -q "_tee_insecure" "$T/kbs.toml" || fail "the KBS configuration still has an _insecure TEE switch"
start_kbs "$T/kbs.toml"
A="--url $URL --admin-key $T/admin.key"
head -c 32 /dev/urandom | base64 >"$T/secret"
"$CLI_BIN" kbs set-resource $A --path default/tpm/secret --file "$T/secret" >/dev/null || fail "set-resource"
"$CLI_BIN" kbs set-resource-policy $A --file "$SRC/policies/resource/affirming.rego" >/dev/null \
    || fail "resource policy"

# ---- init-data (sha256: a TPM binds it by extending PCR8) ----
cat >"$T/initdata.toml" <<'EOF'
algorithm = "sha256"
version = "0.1.0"

[data]
"aa.toml" = '''
[token_configs.kbs]
url = "http://kbs.example"
'''
EOF

# ---- the agent and the hub ----
write_aa_config() { # write_aa_config TCTI
    cat >"$T/aa.toml" <<EOF
tpm_tcti = "$1"
[token_configs.kbs]
url = "$URL"
[eventlog_config]
enable_eventlog = true
init_pcr = 23
path = "$T/aael/eventlog"
EOF
}
start_aa() {
    rm -f "$T/aa.sock"
    "$AA_BIN" -a "unix://$T/aa.sock" -c "$T/aa.toml" -t "$T/initdata.toml" >>"$T/aa.log" 2>&1 &
    AA_PID=$!
    PIDS="$PIDS $AA_PID"
    i=0
    until [ -S "$T/aa.sock" ]; do
        i=$((i + 1)); [ $i -lt 200 ] || fail "cloister-aa did not come up: $(tail -3 "$T/aa.log")"
        kill -0 "$AA_PID" 2>/dev/null || fail "cloister-aa exited: $(tail -3 "$T/aa.log")"
        sleep 0.05
    done
}
stop_aa() { kill "$AA_PID" 2>/dev/null || true; wait "$AA_PID" 2>/dev/null || true; }
write_aa_config "$TCTI_A"
start_aa
grep -q "TEE tpm" "$T/aa.log" || fail "the agent did not detect the TPM: $(tail -3 "$T/aa.log")"
ok "cloister-aa detected the TPM from its TCTI (no attester forced)"

REST_PORT=$(free_port)
cat >"$T/cdh.toml" <<EOF
socket = "unix://$T/cdh.sock"
[aa]
aa_socket = "unix://$T/aa.sock"
[kbc]
name = "cc_kbc"
url = "$URL"
[rest]
address = "127.0.0.1:$REST_PORT"
features = "all"
EOF
"$CDH_BIN" -c "$T/cdh.toml" >>"$T/cdh.log" 2>&1 &
CDH_PID=$!
PIDS="$PIDS $CDH_PID"
REST="http://127.0.0.1:$REST_PORT"
i=0
until curl -s "$REST/info" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "cloister-cdh did not come up: $(tail -3 "$T/cdh.log")"
    sleep 0.05
done
rest() { curl -sS -o "$T/body" -w '%{http_code}' "$@"; }
alive() { kill -0 "$AA_PID" && kill -0 "$CDH_PID" && kill -0 "$KBS_PID" || fail "a daemon died"; }
fresh_token() { # drop the hub's cache and token, and have the agent run RCAR again
    kill -HUP "$CDH_PID"; sleep 0.2
    st=$(rest "$REST/aa/token?token_type=kbs-refresh"); [ "$st" = 200 ] || fail "token refresh => $st: $(cat "$T/body")"
}
pcr() { # pcr TCTI INDEX: the SHA-256 PCR value in hex, read by tpm2-tools
    tpm2_pcrread -T "$1" "sha256:$2" | awk '/0x/ {sub(/^0x/, "", $NF); print tolower($NF)}'
}

# ---- init-data reached PCR8 (read independently) ----
want8=$(python3 -c 'import hashlib,sys; d=hashlib.sha256(open(sys.argv[1],"rb").read()).digest(); print(hashlib.sha256(bytes(32)+d).hexdigest())' "$T/initdata.toml")
[ "$(pcr "$TCTI_A" 8)" = "$want8" ] || fail "PCR8 is $(pcr "$TCTI_A" 8), wanted SHA-256(zeros || init-data digest)"
ok "init-data digest extended into PCR8 once (tpm2_pcrread)"

# ---- the evidence, checked with independent tools ----
st=$(rest "$REST/aa/evidence?runtime_data=bm9uY2UtZnJvbS10aGUtdGVzdA&encoding=base64")
expect_status 200 "$st" "REST evidence from the TPM"
cp "$T/body" "$T/evA.json"
python3 - "$T/evA.json" "$T" <<'EOF' || fail "evidence does not parse as trustee's tpm shape"
import base64, json, struct, sys, hashlib
ev = json.load(open(sys.argv[1])); T = sys.argv[2]
assert set(ev) >= {"ak_public", "tpm_quote"}, ev.keys()
q = ev["tpm_quote"]
msg = base64.b64decode(q["message"]); sig = base64.b64decode(q["signature"])
assert len(q["pcrs"]) == 24
# TPMS_ATTEST: magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion, quote
magic, typ = struct.unpack(">IH", msg[:6]); o = 6
assert magic == 0xff544347 and typ == 0x8018, (hex(magic), hex(typ))
n, = struct.unpack(">H", msg[o:o + 2]); o += 2 + n
n, = struct.unpack(">H", msg[o:o + 2]); extra = msg[o + 2:o + 2 + n]; o += 2 + n
want = b"nonce-from-the-test"; want += bytes(32 - len(want))
assert extra == want, extra.hex()
o += 17 + 8
cnt, = struct.unpack(">I", msg[o:o + 4]); o += 4
assert cnt == 1
alg, size = struct.unpack(">HB", msg[o:o + 3]); o += 3
mask = int.from_bytes(msg[o:o + size], "little"); o += size
assert alg == 0x000b and mask == 0xffffff, (hex(alg), hex(mask))
n, = struct.unpack(">H", msg[o:o + 2]); digest = msg[o + 2:o + 2 + n]
assert digest == hashlib.sha256(b"".join(bytes.fromhex(p) for p in q["pcrs"])).digest(), "PCR digest"
# TPMT_SIGNATURE: RSASSA (0x0014), SHA-256, TPM2B signature
salg, hal, n = struct.unpack(">HHH", sig[:6])
assert salg == 0x0014 and hal == 0x000b, (hex(salg), hex(hal))
open(T + "/msg.bin", "wb").write(msg); open(T + "/sig.bin", "wb").write(sig[6:6 + n])
open(T + "/ak.der", "wb").write(base64.b64decode(ev["ak_public"]))
EOF
openssl pkey -pubin -inform DER -in "$T/ak.der" -out "$T/ak.evidence.pem" || fail "ak_public is not a public key"
openssl dgst -sha256 -verify "$T/ak.evidence.pem" -signature "$T/sig.bin" "$T/msg.bin" >/dev/null \
    || fail "openssl does not verify the quote signature with ak_public"
ok "evidence: TPMS_ATTEST with the runtime data in extraData and all 24 SHA-256 PCRs, signature verified by openssl"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm_quote"]["pcrs"][8])' "$T/evA.json")" = "$want8" ] \
    || fail "the evidence's PCR8 is not what tpm2_pcrread reads"

# ---- the owner enrols TPM A: AK derived with tpm2-tools from the same template ----
(
    cd "$T"
    export TPM2TOOLS_TCTI=$TCTI_A
    tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -c ak.ctx \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' >/dev/null
    tpm2_flushcontext -t
    tpm2_readpublic -c ak.ctx -f pem -o ak.tools.pem >/dev/null
    tpm2_flushcontext -t
) || fail "tpm2-tools could not derive the AK"
cmp -s "$T/ak.tools.pem" "$T/ak.evidence.pem" || fail "the AK in the evidence is not the one tpm2-tools derives"
AK=$(openssl pkey -pubin -in "$T/ak.tools.pem" -outform DER | base64 -w0)
PCR11=$(pcr "$TCTI_A" 11)
"$CLI_BIN" kbs set-reference-value $A --name trusted_aks --value "$AK" >/dev/null || fail "rv trusted_aks"
"$CLI_BIN" kbs set-reference-value $A --name tpm_pcr11 --value "$PCR11" >/dev/null || fail "rv tpm_pcr11"
ok "AK derived independently (tpm2_createprimary) equals ak_public; registered as trusted_aks with tpm_pcr11"

# ---- a container fetches the resource through the REST bridge ----
st=$(rest "$REST/cdh/resource/default/tpm/secret"); expect_status 200 "$st" "REST resource released to TPM A"
cmp -s "$T/body" "$T/secret" || fail "released resource differs"
st=$(rest "$REST/aa/token?token_type=kbs"); expect_status 200 "$st" "REST token"
claims() { # claims FILE: prints "status ak-matches pcr11 init_data" of the EAR token in FILE
    python3 - "$1" "$AK" <<'EOF'
import base64, json, sys
tok = json.load(open(sys.argv[1]))["token"]
c = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
sub = next(iter(c["submods"].values()))
ev = sub["ear.veraison.annotated-evidence"]
tpm = ev.get("tpm", {})
print(sub["ear.status"], tpm.get("ak_public") == sys.argv[2], tpm.get("pcr11"), ev.get("init_data", ""))
EOF
}
set -- $(claims "$T/body")
[ "$1" = affirming ] && [ "$2" = True ] || fail "TPM A token: status $1, AK enrolled $2"
[ "$3" = "$PCR11" ] || fail "token pcr11 $3, wanted $PCR11"
[ -n "${4:-}" ] || fail "the token does not carry the init-data digest"
ok "EAR token for TPM A: affirming, enrolled AK, PCR11 and the init-data claim"

# ---- runtime measurement through the REST bridge: PCR23 moves as recomputed here ----
p23=$(pcr "$TCTI_A" 23)
st=$(rest -X POST -d '{"domain":"github.com/confidential-containers","operation":"PullImage","content":"{\"image\":\"busybox\"}"}' \
    "$REST/aa/aael"); expect_status 200 "$st" "aael"
grep -q '"success":"true"' "$T/body" || fail "aael not extended: $(cat "$T/body")"
want23=$(python3 - "$p23" <<'EOF'
import hashlib, struct, sys
text = b'github.com/confidential-containers PullImage {"image":"busybox"}'
tagged = struct.pack("<II", 0x4141454C, len(text)) + text
print(hashlib.sha256(bytes.fromhex(sys.argv[1]) + hashlib.sha256(tagged).digest()).hexdigest())
EOF
)
[ "$(pcr "$TCTI_A" 23)" = "$want23" ] || fail "PCR23 $(pcr "$TCTI_A" 23), wanted $want23"
python3 - "$T/aael/eventlog" <<'EOF' || fail "AAEL entry"
import struct, sys
b = open(sys.argv[1], "rb").read()
mr, typ, cnt, alg = struct.unpack("<IIIH", b[:14])
assert (mr, typ, cnt, alg) == (23, 6, 1, 0x000b), (mr, typ, cnt, hex(alg))
EOF
ok "aael: PCR23 = SHA-256(PCR23 || SHA-256(TaggedEvent)) and the AAEL entry names PCR23/SHA-256"
alive

# ---- twin: an AK the owner did not enrol (swtpm B, same PCRs) ----
stop_aa
write_aa_config "$TCTI_B"
start_aa
[ "$(pcr "$TCTI_B" 11)" = "$PCR11" ] || fail "TPM B's PCR11 differs: this twin would not isolate the AK"
fresh_token
set -- $(claims "$T/body")
[ "$1" != affirming ] && [ "$2" = False ] || fail "TPM B token: status $1, AK enrolled $2"
ok "foreign AK: appraised ($1), not affirming"
st=$(rest "$REST/cdh/resource/default/tpm/secret"); [ "$st" = 500 ] || fail "foreign AK released the resource ($st)"
grep -qi "401\|denied\|policy" "$T/body" || fail "foreign AK refusal does not say why: $(cat "$T/body")"
ok "foreign AK: resource refused by affirming.rego => $st: $(head -c 160 "$T/body")"
alive

# ---- twin: a PCR extended after the fact ----
stop_aa
write_aa_config "$TCTI_A"
start_aa # PCR8 already holds this init-data: the agent starts without extending it again
[ "$(pcr "$TCTI_A" 8)" = "$want8" ] || fail "PCR8 extended twice on restart"
fresh_token
st=$(rest "$REST/cdh/resource/default/tpm/secret"); expect_status 200 "$st" "TPM A again (agent restarted)"
TPM2TOOLS_TCTI=$TCTI_A tpm2_pcrextend "11:sha256=$(printf 'after the fact' | sha256sum | cut -c1-64)" \
    || fail "pcrextend"
st=$(rest "$REST/aa/evidence?runtime_data=x"); expect_status 200 "$st" "evidence after the extend"
new11=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm_quote"]["pcrs"][11])' "$T/body")
[ "$new11" != "$PCR11" ] && [ "$new11" = "$(pcr "$TCTI_A" 11)" ] || fail "evidence PCR11 $new11"
ok "PCR11 extended after enrolment: the evidence carries the new value"
fresh_token
set -- $(claims "$T/body")
[ "$1" != affirming ] && [ "$3" = "$new11" ] || fail "changed PCR11 token: status $1, pcr11 $3"
st=$(rest "$REST/cdh/resource/default/tpm/secret"); [ "$st" = 500 ] || fail "changed PCR11 released the resource"
ok "changed PCR11: appraisal $1, resource refused => $st"
alive

# ---- swtpm killed mid-way: clean errors, daemons up, recovery when it returns ----
# first with a quote in flight: swtpm stopped, the request sent, then swtpm killed
kill -STOP "$SWTPM_A"
curl -sS -o "$T/inflight" -w '%{http_code}' "$REST/aa/evidence?runtime_data=x" >"$T/inflight.st" &
CURL=$!
sleep 0.5
kill -0 "$CURL" 2>/dev/null || fail "the evidence request did not wait for the stopped TPM"
kill -KILL "$SWTPM_A"; wait "$SWTPM_A" 2>/dev/null || true
wait "$CURL" || true
[ "$(cat "$T/inflight.st")" = 500 ] || fail "in-flight quote: $(cat "$T/inflight.st") $(cat "$T/inflight")"
grep -qi "tpm" "$T/inflight" || fail "the in-flight error does not name the TPM: $(cat "$T/inflight")"
ok "swtpm killed during a quote => 500: $(head -c 200 "$T/inflight")"
st=$(rest "$REST/aa/evidence?runtime_data=x"); expect_status 500 "$st" "evidence with the TPM gone"
grep -qi "tpm" "$T/body" || fail "the error does not name the TPM: $(cat "$T/body")"
ok "evidence error: $(head -c 200 "$T/body")"
st=$(rest -X POST -d '{"domain":"d","operation":"o","content":"c"}' "$REST/aa/aael"); expect_status 500 "$st" "aael with the TPM gone"
t0=$(date +%s)
st=$(rest "$REST/aa/token?token_type=kbs-refresh"); expect_status 500 "$st" "token with the TPM gone"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the token call took too long (retries not bounded)"
kill -HUP "$CDH_PID"; sleep 0.2
st=$(rest "$REST/cdh/resource/default/tpm/secret"); expect_status 500 "$st" "resource with the TPM gone"
alive
ok "cloister-aa, cloister-cdh and cloister-kbs still up"
start_swtpm A "$SP_A"
st=$(rest "$REST/aa/evidence?runtime_data=x"); expect_status 200 "$st" "evidence once the TPM is back (no agent restart)"
alive
echo "PASS"
