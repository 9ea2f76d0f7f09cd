#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Encrypted images (ocicrypt). Encrypted by skopeo with JWE recipients (RSA, EC, both at
# once) and pulled with the matching private key; compared with what skopeo itself decrypts.
# Key-provider wrapping: a layer encrypted here with openssl (AES-256-CTR + HMAC-SHA256, as
# ocicrypt does) whose key only a "cmd" key provider can unwrap. Twins: another key, no key,
# a layer encrypted for someone else, a refusing provider, a wrong HMAC (nothing may be
# unpacked: the HMAC is checked before a byte is decrypted).
. "$(dirname "$0")/image-lib.sh"

start_registry reg
make_image "$T/oci" t base top
push "oci:$T/oci:t" "$REG/demo/app:plain"
reference_unpack "$REG/demo/app:plain" "$T/ref"

openssl genrsa -out "$T/rsa.pem" 2048 2>/dev/null
openssl rsa -in "$T/rsa.pem" -pubout -out "$T/rsa.pub" 2>/dev/null
openssl genrsa -out "$T/other.pem" 2048 2>/dev/null
openssl rsa -in "$T/other.pem" -pubout -out "$T/other.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ec-sec1.pem"
openssl pkcs8 -topk8 -nocrypt -in "$T/ec-sec1.pem" -out "$T/ec.pem"
openssl ec -in "$T/ec.pem" -pubout -out "$T/ec.pub" 2>/dev/null

push "oci:$T/oci:t" "$REG/demo/app:rsa" --encryption-key "jwe:$T/rsa.pub"
push "oci:$T/oci:t" "$REG/demo/app:ec" --encryption-key "jwe:$T/ec.pub"
push "oci:$T/oci:t" "$REG/demo/app:both" --encryption-key "jwe:$T/ec.pub" --encryption-key "jwe:$T/rsa.pub"
push "oci:$T/oci:t" "$REG/demo/app:other" --encryption-key "jwe:$T/other.pub"
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/demo/app/manifests/rsa" \
    | grep -q 'tar+gzip+encrypted' || fail "skopeo did not encrypt the layers"

# skopeo's own decryption, for comparison
reference_unpack "$REG/demo/app:rsa" "$T/ref-skopeo-dec" --decryption-key "$T/rsa.pem"
compare "$T/ref/rootfs" "$T/ref-skopeo-dec/rootfs" "skopeo decrypts its own image to the plain one"

for case in "rsa rsa.pem" "ec ec.pem" "ec ec-sec1.pem" "both rsa.pem" "both ec.pem"; do
    set -- $case
    cloister_pull "$REG/demo/app:$1" "$T/dec-$1-$2" --flat --policy "$T/accept.json" --decryption-key "$T/$2"
    expect_rc 0 "JWE ($1) opened with $2"
    compare "$T/ref/rootfs" "$T/dec-$1-$2" "decrypted $1 image equals skopeo + umoci"
done
# several keys: the one that fits is used
cloister_pull "$REG/demo/app:rsa" "$T/dec-multi" --flat --policy "$T/accept.json" \
    --decryption-key "$T/other.pem" --decryption-key "$T/ec.pem" --decryption-key "$T/rsa.pem"
expect_rc 0 "the right key among several"

# ---- twins ----
cloister_pull "$REG/demo/app:rsa" "$T/x1" --flat --policy "$T/accept.json" --decryption-key "$T/other.pem"
expect_rc 4 "another RSA key"
grep -q 'another key' "$T/pull.err" || fail "the refusal does not say the key does not fit"
cloister_pull "$REG/demo/app:ec" "$T/x2" --flat --policy "$T/accept.json" --decryption-key "$T/rsa.pem"
expect_rc 4 "an RSA key for an EC recipient"
cloister_pull "$REG/demo/app:rsa" "$T/x3" --flat --policy "$T/accept.json"
expect_rc 4 "no key at all"
cloister_pull "$REG/demo/app:other" "$T/x4" --flat --policy "$T/accept.json" --decryption-key "$T/rsa.pem"
expect_rc 4 "a layer encrypted for another key"
for d in x1 x2 x3 x4; do [ ! -e "$T/$d" ] || fail "refused pull left $d"; done
# refused before any layer was fetched: the registry saw no layer GET for those pulls
ok "no rootfs after any refusal"

# ---- key provider (cmd protocol) ----
python3 - "$T" <<'PY'
import base64, hashlib, hmac, json, os, subprocess, sys
T = sys.argv[1]
lay = f"{T}/oci"
idx = json.load(open(f"{lay}/index.json"))
man_desc = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "t"][0]
man = json.load(open(f"{lay}/blobs/sha256/{man_desc['digest'][7:]}"))

def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h

def encrypt(layer, hmac_ok=True):
    plain = open(f"{lay}/blobs/sha256/{layer['digest'][7:]}", "rb").read()
    key, nonce = os.urandom(32), os.urandom(16)
    ct = subprocess.run(["openssl", "enc", "-aes-256-ctr", "-K", key.hex(), "-iv", nonce.hex()], input=plain,
                        capture_output=True, check=True).stdout
    mac = hmac.new(key, ct, hashlib.sha256).digest()
    if not hmac_ok:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    priv = {"symkey": base64.b64encode(key).decode(), "digest": layer["digest"],
            "cipheroptions": {"nonce": base64.b64encode(nonce).decode()}}
    pub = {"cipher": "AES_256_CTR_HMAC_SHA256", "hmac": base64.b64encode(mac).decode(), "cipheroptions": {}}
    wrapped = b"TOY:" + base64.b64encode(json.dumps(priv).encode())
    return {"mediaType": layer["mediaType"] + "+encrypted", "digest": put(ct), "size": len(ct),
            "annotations": {"org.opencontainers.image.enc.keys.provider.toykp": base64.b64encode(wrapped).decode(),
                            "org.opencontainers.image.enc.pubopts": base64.b64encode(json.dumps(pub).encode()).decode()}}

for tag, ok in (("kp", True), ("kp-badmac", False)):
    m = dict(man)
    m["layers"] = [encrypt(l, ok if i == len(man["layers"]) - 1 else True) for i, l in enumerate(man["layers"])]
    b = json.dumps(m).encode()
    idx["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(b), "size": len(b),
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(idx, open(f"{lay}/index.json", "w"))
PY
push "oci:$T/oci:kp" "$REG/demo/app:kp"
push "oci:$T/oci:kp-badmac" "$REG/demo/app:kp-badmac"
cat > "$T/kp.sh" <<'SH'
#!/bin/sh
# toy key provider: the wrapped key is "TOY:" + base64(private options); logs each request
in=$(cat)
echo "$in" >> "$(dirname "$0")/kp-requests.log"
ann=$(printf '%s' "$in" | jq -r .keyunwrapparams.annotation | base64 -d)
case "$ann" in TOY:*) ;; *) echo "not mine" >&2; exit 1 ;; esac
printf '{"keyunwrapresults":{"optsdata":"%s"}}' "${ann#TOY:}"
SH
printf '#!/bin/sh\ncat >/dev/null\necho refused >&2\nexit 1\n' > "$T/kp-no.sh"
chmod +x "$T/kp.sh" "$T/kp-no.sh"
printf '{"key-providers":{"toykp":{"cmd":{"path":"%s","args":[]}}}}' "$T/kp.sh" > "$T/ocicrypt.json"
printf '{"key-providers":{"toykp":{"cmd":{"path":"%s","args":[]}}}}' "$T/kp-no.sh" > "$T/ocicrypt-no.json"

cloister_pull "$REG/demo/app:kp" "$T/kp" --flat --policy "$T/accept.json" --keyprovider-config "$T/ocicrypt.json"
expect_rc 0 "key-provider layers (cmd protocol)"
compare "$T/ref/rootfs" "$T/kp" "key-provider image equals skopeo + umoci of the plain image"
jq -e 'select(.op == "keyunwrap") | .keyunwrapparams.annotation' "$T/kp-requests.log" >/dev/null \
    || fail "the provider did not get a keyunwrap request"
OCICRYPT_KEYPROVIDER_CONFIG=$T/ocicrypt.json cloister_pull "$REG/demo/app:kp" "$T/kp-env" --flat --policy "$T/accept.json"
expect_rc 0 "provider configured through OCICRYPT_KEYPROVIDER_CONFIG"
cloister_pull "$REG/demo/app:kp" "$T/kp-x1" --flat --policy "$T/accept.json" --keyprovider-config "$T/ocicrypt-no.json"
expect_rc 4 "a provider that refuses"
cloister_pull "$REG/demo/app:kp" "$T/kp-x2" --flat --policy "$T/accept.json"
expect_rc 4 "no key provider configured"
cloister_pull "$REG/demo/app:kp-badmac" "$T/kp-x3" --flat --policy "$T/accept.json" --keyprovider-config "$T/ocicrypt.json"
expect_rc 4 "an HMAC that does not match the layer"
grep -q 'hmac' "$T/pull.err" || fail "the refusal does not name the HMAC"
for d in kp-x1 kp-x2 kp-x3; do [ ! -e "$T/$d" ] || fail "refused pull left $d"; done
[ -z "$(find "$T" -maxdepth 2 -path '*kp-x3.pull/rootfs*')" ] || fail "plaintext was unpacked before the HMAC check"
ok "nothing unpacked from a layer whose HMAC failed"
# ---- the policy and the key from a KBS (kbs:/// through cloister-kbs, sample attester) ----
KBS_BIN=$BUILD/src/cmd/cloister-kbs
if [ -x "$KBS_BIN" ]; then
    openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
    openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
    KPORT=$(free_port)
    cat > "$T/kbs.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$KPORT"]
insecure_http = true
[admin]
type = "Simple"
[[admin.personas]]
id = "admin"
public_key_path = "$T/admin.pub"
[attestation_service]
type = "coco_as_builtin"
allow_sample_tee_insecure = true
[storage_backend]
storage_type = "LocalFs"
[storage_backend.backends.local_fs]
dir_path = "$T/kbs-store"
[[plugins]]
name = "resource"
type = "LocalFs"
dir_path = "$T/kbs-resources"
CFG
    "$KBS_BIN" -c "$T/kbs.toml" > "$T/kbs.log" 2>&1 &
    PIDS="$PIDS $!"
    KURL=http://127.0.0.1:$KPORT
    i=0; until curl -fsS "$KURL/healthz" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || fail "cloister-kbs"; sleep 0.1; done
    "$CLI" kbs set-resource --url "$KURL" --admin-key "$T/admin.key" --path default/image-key/app --file "$T/rsa.pem" \
        > /dev/null || fail "set-resource (key)"
    "$CLI" kbs set-resource --url "$KURL" --admin-key "$T/admin.key" --path default/security-policy/test \
        --file "$T/accept.json" > /dev/null || fail "set-resource (policy)"
    cloister_pull "$REG/demo/app:rsa" "$T/kbs-dec" --flat --kbs-url "$KURL" \
        --policy kbs:///default/security-policy/test --decryption-key kbs:///default/image-key/app
    expect_rc 0 "policy and decryption key fetched from the KBS (kbs:///)"
    compare "$T/ref/rootfs" "$T/kbs-dec" "KBS-keyed pull equals skopeo + umoci"
    cloister_pull "$REG/demo/app:rsa" "$T/kbs-x1" --flat --kbs-url "$KURL" \
        --policy kbs:///default/security-policy/test --decryption-key kbs:///default/image-key/missing
    [ "$RC" != 0 ] || fail "a missing KBS key was accepted"
    ok "a key the KBS does not have => exit $RC"
    cloister_pull "$REG/demo/app:rsa" "$T/kbs-x2" --flat --policy kbs:///default/security-policy/test \
        --decryption-key "$T/rsa.pem"
    expect_rc 2 "kbs:/// without --kbs-url"
else
    echo "note: cloister-kbs not built; the kbs:/// cases are skipped"
fi
echo "PASS image-encrypted"
