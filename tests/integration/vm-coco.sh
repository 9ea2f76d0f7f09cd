#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The CoCo path end to end (docs/coco.md), three VM boots under the shim and containerd
# (shim-lib.sh): an image whose layer is encrypted (keyprovider annotation, layer options
# wrapped with `cloister secret wrap-key` under a KEK that only cloister-kbs holds, as the
# resource default/image-kek/1), a KBS on the host (10.0.2.2 from the guest) whose resource
# policy releases the KEK only to an affirming TPM appraisal (the owner enrolled the vTPM's AK
# and PCR 11) whose PCR 8 holds this pod's init-data digest, and an init-data that carries
# the guest's aa.toml (KBS URL), cdh.toml (cc_kbc, registry, signature policy) and agent
# policy. The guest init extracts it (cloister-agent --initdata-extract), cloister-aa binds
# its digest into PCR 8, cloister-cdh pulls and decrypts the image in the guest.
#   boot 1: the enrolled vTPM + the pinned init-data: the container prints the marker file
#           that only the encrypted layer holds (the image GPG-signed with skopeo, the policy
#           signedBy that key, the signature fetched from a loopback lookaside); in the same
#           pod, an unsigned image of the same repository is refused (enforced in the guest).
#   boot 2: the same pod with an init-data that differs by one byte: the KEK is refused, the
#           container does not start, ctr's error names the stage.
#   boot 3: the pinned init-data on a foreign vTPM (fresh swtpm state, another AK): refused.
#   boot 4: init-data the shim accepts but whose aa.toml is not TOML: the guest's init-data
#           stage refuses it and powers off; the sandbox fails, the reason reaches ctr.
# No boot: the extract step on the host, a good disk written out 0600 and a corrupted one
# refused with nothing written.
# shim-lib.sh builds the guest image of this build first (guest-image.sh does nothing when
# its inputs, the agent and guest/cloister-init among them, are unchanged).
. "$(dirname "$0")/shim-lib.sh"
KBS_BIN=$BUILD/src/cmd/cloister-kbs
CLI=$BUILD/src/cmd/cloister
AGENT=$BUILD/src/cmd/cloister-agent
TOOL=$BUILD/tests/integration/tpm_tool
for b in "$KBS_BIN" "$CLI" "$AGENT" "$TOOL"; do [ -x "$b" ] || fail "$b is not built"; done
need openssl umoci gpg

# ---- registry: busybox (host side), the encrypted image, an image the policy does not accept ----
start_registry
make_busybox
MARK=coco-marker-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
cp -a "$T/rootfs" "$T/coco-rootfs"
echo "$MARK" > "$T/coco-rootfs/coco-marker"
tar -C "$T/coco-rootfs" -cf "$T/coco.tar" .
umoci new --image "$T/oci:coco" >/dev/null
umoci raw add-layer --image "$T/oci:coco" "$T/coco.tar" >/dev/null
umoci config --image "$T/oci:coco" --config.cmd /bin/cat --config.cmd /coco-marker >/dev/null
head -c 32 /dev/urandom > "$T/kek"
# ocicrypt's cipher (AES-256-CTR + HMAC-SHA256) with openssl; the layer options wrapped as the
# hub's annotation packet under the KEK, named by its kbs:/// URI
python3 - "$T" "$CLI" <<'PY' || fail "encrypting the image"
import base64, hashlib, hmac, json, os, subprocess, sys
T, CLI = sys.argv[1:3]
lay = f"{T}/oci"
idx = json.load(open(f"{lay}/index.json"))
desc = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "coco"][0]
man = json.load(open(f"{lay}/blobs/sha256/{desc['digest'][7:]}"))
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h
def encrypt(layer):
    plain = open(f"{lay}/blobs/sha256/{layer['digest'][7:]}", "rb").read()
    key, nonce = os.urandom(32), os.urandom(16)
    ct = subprocess.run(["openssl", "enc", "-aes-256-ctr", "-K", key.hex(), "-iv", nonce.hex()], input=plain,
                        capture_output=True, check=True).stdout
    priv = {"symkey": base64.b64encode(key).decode(), "digest": layer["digest"],
            "cipheroptions": {"nonce": base64.b64encode(nonce).decode()}}
    pub = {"cipher": "AES_256_CTR_HMAC_SHA256", "cipheroptions": {},
           "hmac": base64.b64encode(hmac.new(key, ct, hashlib.sha256).digest()).decode()}
    open(f"{T}/plbco.json", "w").write(json.dumps(priv))
    ann = subprocess.run([CLI, "secret", "wrap-key", "--kid", "kbs:///default/image-kek/1", "--kek-file",
                          f"{T}/kek", "--file", f"{T}/plbco.json"], capture_output=True, check=True, text=True).stdout
    os.unlink(f"{T}/plbco.json")
    return {"mediaType": layer["mediaType"] + "+encrypted", "digest": put(ct), "size": len(ct),
            "annotations": {"org.opencontainers.image.enc.keys.provider.attestation-agent": ann.strip(),
                            "org.opencontainers.image.enc.pubopts": base64.b64encode(json.dumps(pub).encode()).decode()}}
man["layers"] = [encrypt(l) for l in man["layers"]]
b = json.dumps(man).encode()
idx["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(b), "size": len(b),
                         "annotations": {"org.opencontainers.image.ref.name": "coco-enc"}})
json.dump(idx, open(f"{lay}/index.json", "w"))
PY
# GPG simple signing: skopeo --sign-by writes the signature to a lookaside folder that a
# loopback HTTP server publishes (the guest reads it at 10.0.2.2); the unsigned twin is the
# plaintext image pushed to the same repository without a signature.
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME" "$T/regd" "$T/lookaside"
gpg --batch --passphrase '' --quick-gen-key 'Cloister CoCo test <coco@example.com>' ed25519 sign never > "$T/gpg.log" 2>&1 \
    || fail "gpg key: $(cat "$T/gpg.log")"
FPR=$(gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
KEYDATA=$(gpg --armor --export "$FPR" | base64 -w0)
printf 'docker:\n  %s:\n    lookaside: file://%s\n    lookaside-staging: file://%s\n' "$REG" "$T/lookaside" "$T/lookaside" \
    > "$T/regd/default.yaml"
# (signed for the name the guest pulls: the registry is 10.0.2.2 from inside the VM)
skopeo --registries.d "$T/regd" copy -q --dest-tls-verify=false --sign-by "$FPR" --sign-identity "$GREG/test/coco:enc" "oci:$T/oci:coco-enc" \
    "docker://$REG/test/coco:enc" >> "$T/skopeo.log" 2>&1 || fail "skopeo push --sign-by coco:enc: $(cat "$T/skopeo.log")"
find "$T/lookaside" -name signature-1 | grep -q . || fail "skopeo wrote no lookaside signature"
skopeo copy -q --dest-tls-verify=false "oci:$T/oci:coco" "docker://$REG/test/coco:unsigned" >> "$T/skopeo.log" 2>&1 \
    || fail "skopeo push coco:unsigned"
LPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$T/lookaside" "$LPORT" > "$T/lookaside.log" 2>&1 &
PIDS="$PIDS $!"
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/test/coco/manifests/enc" \
    | grep -q 'tar+encrypted\|tar+gzip+encrypted' || fail "coco:enc has no encrypted layer"
GENC=$GREG/test/coco:enc
GUNSIGNED=$GREG/test/coco:unsigned
ok "image $REG/test/coco:enc: one layer, encrypted, its key wrapped under a KEK only the KBS holds; GPG-signed (lookaside on 127.0.0.1:$LPORT)"

# ---- the vTPM the owner enrols: a swtpm state made here, its AK and PCR 11 as reference values ----
mkdir -p "$T/tpm-enrolled"
sp=$(swtpm_ports)
swtpm socket --tpm2 --tpmstate dir="$T/tpm-enrolled" --server type=tcp,port="$sp",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((sp + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear > "$T/swtpm-enrol.log" 2>&1 &
ENROL_PID=$!
PIDS="$PIDS $ENROL_PID"
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$sp),1)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "the enrolment swtpm did not start"; sleep 0.1
done
TSS2_LOG=all+none "$TOOL" quote "swtpm:host=127.0.0.1,port=$sp" 00 > "$T/enrol.json" || fail "tpm_tool quote (enrolment)"
kill "$ENROL_PID"; wait "$ENROL_PID" 2>/dev/null || true
AK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ak_public"])' "$T/enrol.json")
PCR11=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tpm_quote"]["pcrs"][11])' "$T/enrol.json")
[ -n "$AK" ] && ls "$T/tpm-enrolled"/tpm2-00.permall > /dev/null || fail "no AK / swtpm state from the enrolment"
# The platform's TPM: the shim's per-VM swtpm starts from the enrolled state (same seeds, same
# AK). tpm.swtpm names this wrapper; the foreign case uses swtpm itself (fresh seeds).
cat > "$T/swtpm-enrolled" <<W
#!/bin/sh
for a in "\$@"; do case \$a in dir=*) cp "$T/tpm-enrolled/tpm2-00.permall" "\${a#dir=}/" || exit 1 ;; esac; done
exec $(command -v swtpm) "\$@"
W
chmod 755 "$T/swtpm-enrolled"
ok "vTPM enrolled: AK $(echo "$AK" | cut -c1-24)..., PCR 11 $PCR11"

# ---- the KBS: no _insecure switch; KEK as a resource; the resource policy ----
openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
KPORT=$(free_port)
cat > "$T/kbs.toml" <<K
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
timeout = 5
[storage_backend]
storage_type = "LocalFs"
[storage_backend.backends.local_fs]
dir_path = "$T/kbs-store"
[[plugins]]
name = "resource"
type = "LocalFs"
dir_path = "$T/kbs-resources"
K
"$KBS_BIN" -c "$T/kbs.toml" > "$T/kbs.log" 2>&1 &
PIDS="$PIDS $!"
URL=http://127.0.0.1:$KPORT
i=0
until curl -sf -o /dev/null "$URL/healthz"; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "cloister-kbs did not start: $(cat "$T/kbs.log")"; sleep 0.1
done
A="--url $URL --admin-key $T/admin.key"
"$CLI" kbs set-resource $A --path default/image-kek/1 --file "$T/kek" > /dev/null || fail "set-resource KEK"
"$CLI" kbs set-reference-value $A --name trusted_aks --value "$AK" > /dev/null || fail "rv trusted_aks"
"$CLI" kbs set-reference-value $A --name tpm_pcr11 --value "$PCR11" > /dev/null || fail "rv tpm_pcr11"

# ---- the init-data: aa.toml (the KBS), cdh.toml (cc_kbc, registry, signature policy) ----
# initdata NOTE FILE: NOTE goes into a comment of cdh.toml (one byte differs between pods)
initdata() {
    cat > "$2" <<I
version = "0.1.0"
algorithm = "sha256"

[data]
"aa.toml" = '''
[token_configs.kbs]
url = "http://10.0.2.2:$KPORT"

[eventlog_config]
init_pcr = 23
enable_eventlog = true
'''
"cdh.toml" = """
# pod $1
socket = "unix:///run/confidential-containers/cdh.sock"

[aa]
aa_socket = "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock"

[kbc]
name = "cc_kbc"
url = "http://10.0.2.2:$KPORT"

[image]
image_security_policy = '{"default": [{"type": "reject"}], "transports": {"docker": {"$GREG/test/coco": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "$KEYDATA"}]}}}'
sigstore_config = '''
docker:
  $GREG:
    lookaside: http://10.0.2.2:$LPORT
'''

[image.registry_config]
[[image.registry_config.registry]]
location = "$GREG"
insecure = true
"""
I
}
initdata a "$T/init-a.toml"
initdata b "$T/init-b.toml"
[ "$(cmp -l "$T/init-a.toml" "$T/init-b.toml" | wc -l)" = 1 ] || fail "the two init-data should differ by one byte"
PCR8=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes(32) + hashlib.sha256(open(sys.argv[1],"rb").read()).digest()).hexdigest())' "$T/init-a.toml")
cat > "$T/resource.rego" <<R
# The KEK goes only to an affirming appraisal (enrolled AK, PCR 11) of a guest whose PCR 8
# holds pod a's init-data digest, extended once from reset.
package policy
import rego.v1
default allow := false
allow if {
    data.plugin == "resource"
    count(input.submods) > 0
    every _, sub in input.submods {
        sub["ear.status"] == "affirming"
        sub["ear.veraison.annotated-evidence"].init_data == "$PCR8"
    }
}
R
"$CLI" kbs set-resource-policy $A --file "$T/resource.rego" > /dev/null || fail "set-resource-policy"
ok "KBS on 127.0.0.1:$KPORT (10.0.2.2:$KPORT from the guest): KEK, reference values, policy pinning PCR 8 $PCR8"

# ---- no boot: the extract step on the host ----
"$CLI" initdata encode "$T/init-a.toml" --image "$T/disk-a" > /dev/null || fail "initdata encode --image"
"$AGENT" --initdata-extract "$T/x/initdata" --initdata-device "$T/disk-a" 2> "$T/x.log" || fail "extract: $(cat "$T/x.log")"
cmp -s "$T/init-a.toml" "$T/x/initdata/initdata.toml" || fail "extracted initdata.toml differs from the document"
[ "$(stat -c %a "$T/x/initdata")" = 700 ] && [ "$(stat -c %a "$T/x/initdata/cdh.toml")" = 600 ] \
    || fail "extract modes: $(stat -c '%a %n' "$T/x/initdata" "$T/x/initdata"/*)"
grep -q '^url = "http://10.0.2.2:' "$T/x/initdata/aa.toml" || fail "aa.toml not extracted"
cp "$T/disk-a" "$T/disk-bad"
printf '\377' | dd of="$T/disk-bad" bs=1 seek=30 conv=notrunc 2> /dev/null
rc=0
"$AGENT" --initdata-extract "$T/y" --initdata-device "$T/disk-bad" 2> "$T/y.log" || rc=$?
[ $rc != 0 ] && [ $rc != 6 ] || fail "a corrupted init-data disk was accepted (status $rc)"
grep -q 'init-data refused' "$T/y.log" || fail "the refusal is not named: $(cat "$T/y.log")"
[ ! -e "$T/y/initdata.toml" ] || fail "files written from a corrupted disk"
rc=0
"$AGENT" --initdata-extract "$T/z" --initdata-device "$T/kek" 2> /dev/null || rc=$?
[ $rc = 6 ] || fail "a disk without the magic: status $rc (want 6, nothing to extract)"
ok "extract: document, aa.toml, cdh.toml written 0700/0600; corrupted disk refused ($(head -c 120 "$T/y.log")); none → 6"

# ---- containerd with the shim; two runtime configs: enrolled vTPM, foreign vTPM ----
cp "$GUEST/initrd.img" "$T/initrd.img"   # the image as built: its config comes from init-data
write_runtime_config "$T/enrolled.toml" "[tpm]
swtpm = \"$T/swtpm-enrolled\""
write_runtime_config "$T/foreign.toml"
start_containerd
$CTR image pull --plain-http "$IMAGE" > "$T/pull.log" 2>&1 || fail "ctr image pull"

ann() { echo "--annotation io.kubernetes.cri.container-type=$1 --annotation io.kubernetes.cri.sandbox-id=$2"; }
# pod_up POD CONFIG INITDATA: the sandbox task (the VM boots); prints the seconds it took
pod_up() {
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    $CTR run -d --runtime $RUNTIME --runtime-config-path "$2" $(ann sandbox "$1") \
        --annotation "io.katacontainers.config.hypervisor.cc_init_data=$("$CLI" initdata encode "$3")" \
        "$IMAGE" "$1" > "$T/$1.out" 2>&1 || fail "sandbox $1: $(cat "$T/$1.out")"
    BOOT_S=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
}
pod_down() {
    $CTR task kill -s KILL "$1" > /dev/null 2>&1 || true
    i=0
    until $CTR task ls | grep -Eq "^$1 +[0-9]+ +STOPPED"; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "$1 did not stop"; sleep 0.1
    done
    $CTR task rm "$1" > /dev/null 2>&1 || fail "task rm $1"
    $CTR c rm "$1" || fail "c rm $1"
    expect_no_vm "after pod $1"
}
# run_in POD NAME GUEST_IMAGE: a container of the pod; its output in $T/NAME.out, status in $rc
run_in() {
    rc=0
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    $CTR run --runtime $RUNTIME $(ann container "$1") --annotation io.kubernetes.cri.image-name="$3" \
        "$IMAGE" "$2" cat /coco-marker > "$T/$2.out" 2>&1 || rc=$?
    RUN_S=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
    $CTR c rm "$2" > /dev/null 2>&1 || true
}

# ---- boot 1: enrolled vTPM, init-data a ----
pod_up pa "$T/enrolled.toml" "$T/init-a.toml"
ok "boot 1 (enrolled vTPM, init-data a): sandbox up in $BOOT_S s"
grep -q "^pcr8:$PCR8\$" "$T"/vm/*/initdata.digest || fail "the shim expects another PCR 8: $(cat "$T"/vm/*/initdata.digest)"
grep -q 'cloister-guest: init-data: aa /run/confidential-containers/initdata/aa.toml' "$T"/vm/*/console.log \
    || fail "the guest did not take aa.toml from the init-data"
run_in pa ca "$GENC"
[ $rc = 0 ] || fail "the container of the encrypted image did not run: $(cat "$T/ca.out")"
[ "$(cat "$T/ca.out")" = "$MARK" ] || fail "the container printed '$(cat "$T/ca.out")', not the marker"
ok "the encrypted image was pulled, its key released by the KBS, decrypted in the guest: the container printed $MARK (${RUN_S} s)"
grep -q "tpm: init-data digest extended into PCR8" "$T"/vm/*/console.log || fail "the guest did not extend PCR 8"
grep -q 'GET /' "$T/lookaside.log" || fail "the guest did not fetch the signature from the lookaside"
run_in pa cunsigned "$GUNSIGNED"
[ $rc != 0 ] || fail "an unsigned image ran, the signature policy was not enforced"
grep -q "$MARK" "$T/cunsigned.out" && fail "the unsigned image ran"
grep -qi 'signedBy\|signature\|policy' "$T/cunsigned.out" || fail "the signature-policy refusal is not named: $(cat "$T/cunsigned.out")"
ok "signature policy (signedBy GPG) enforced in the guest: $GUNSIGNED refused ($(tr '\n' ' ' < "$T/cunsigned.out" | sed 's/.*PullImage: //' | cut -c1-220))"
cp "$T"/vm/*/console.log "$T/console-1.log" 2>/dev/null || true
pod_down pa

# ---- boot 2: enrolled vTPM, init-data b (one byte differs) ----
pod_up pb "$T/enrolled.toml" "$T/init-b.toml"
ok "boot 2 (enrolled vTPM, init-data b): sandbox up in $BOOT_S s"
grep -q "^pcr8:$PCR8\$" "$T"/vm/*/initdata.digest && fail "init-data b has the pinned PCR 8"
run_in pb cb "$GENC"
grep -q "tpm: init-data digest extended into PCR8" "$T"/vm/*/console.log || fail "boot 2: PCR 8 not extended"
[ $rc != 0 ] || fail "a different init-data got the key: $(cat "$T/cb.out")"
grep -q "$MARK" "$T/cb.out" && fail "the marker leaked with a different init-data"
grep -q 'key provider: image key KEK: KBS default/image-kek/1: HTTP 401 .*resource policy denies' "$T/cb.out" \
    || fail "the refusal does not name the stage: $(cat "$T/cb.out")"
grep -q 'PolicyDeny\|denied\|401' "$T/kbs.log" || fail "the KBS did not log the refusal"
ok "one byte of init-data changed: key refused, container not started ($(tr '\n' ' ' < "$T/cb.out" | sed 's/.*key provider: //' | cut -c1-200))"
pod_down pb

# ---- boot 3: foreign vTPM (fresh swtpm state), init-data a ----
pod_up pc "$T/foreign.toml" "$T/init-a.toml"
ok "boot 3 (foreign vTPM, init-data a): sandbox up in $BOOT_S s"
grep -q "^pcr8:$PCR8\$" "$T"/vm/*/initdata.digest || fail "boot 3: not the pinned init-data"
run_in pc cc "$GENC"
# the init-data is the pinned one and bound: what differs is the TPM (its AK)
grep -q "tpm: init-data digest extended into PCR8" "$T"/vm/*/console.log || fail "boot 3: PCR 8 not extended"
[ $rc != 0 ] || fail "a foreign vTPM got the key: $(cat "$T/cc.out")"
grep -q "$MARK" "$T/cc.out" && fail "the marker leaked to a foreign vTPM"
grep -q 'key provider: image key KEK: KBS default/image-kek/1: HTTP 401 .*resource policy denies' "$T/cc.out" \
    || fail "the refusal does not name the stage: $(cat "$T/cc.out")"
ok "foreign vTPM (AK not enrolled): key refused, container not started ($(tr '\n' ' ' < "$T/cc.out" | sed 's/.*key provider: //' | cut -c1-200))"
pod_down pc

# ---- boot 4: init-data the shim accepts (version, algorithm) whose aa.toml is not TOML:
# the guest's init-data stage refuses it and powers off; the sandbox fails ----
sed 's/^\[token_configs.kbs\]$/[token_configs.kbs/' "$T/init-a.toml" > "$T/init-bad.toml"
cmp -s "$T/init-a.toml" "$T/init-bad.toml" && fail "init-bad.toml is not different"
rc=0
t0=$(date +%s)
# shellcheck disable=SC2046
$CTR run -d --runtime $RUNTIME --runtime-config-path "$T/enrolled.toml" $(ann sandbox pd) \
    --annotation "io.katacontainers.config.hypervisor.cc_init_data=$("$CLI" initdata encode "$T/init-bad.toml")" \
    "$IMAGE" pd > "$T/pd.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "a guest with a malformed init-data aa.toml came up"
grep -q "data.'aa.toml' is not TOML" "$T/pd.out" || fail "the refusal does not reach ctr by name: $(cat "$T/pd.out")"
$CTR task rm -f pd > /dev/null 2>&1 || true
$CTR c rm pd > /dev/null 2>&1 || true
expect_no_vm "after the malformed init-data"
ok "boot 4 (init-data whose aa.toml is not TOML): the guest powered off, sandbox refused in $(($(date +%s) - t0)) s ($(tr '\n' ' ' < "$T/pd.out" | cut -c1-200))"
[ -z "$($CTR task ls -q)" ] || fail "tasks left: $($CTR task ls -q)"
echo "PASS"
