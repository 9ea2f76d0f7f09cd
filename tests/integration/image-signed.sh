#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Signature policy with real signatures. GPG simple signing: skopeo --sign-by writes the
# lookaside signature that registries.d points at; policy signedBy accepts it, and refuses an
# unsigned image, a signature by another key, and a signature copied onto another image.
# Sigstore (cosign format): the signature manifest under <repo>:sha256-<hex>.sig is built here
# with openssl and pushed with curl (the Debian skopeo cannot sign with sigstore); policy
# sigstoreSigned accepts it and refuses another key and a missing signature.
. "$(dirname "$0")/image-lib.sh"
need gpg gpgconf

start_registry reg
make_image "$T/oci" t base
make_image "$T/oci" u base top

# ---- GPG ----
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME" "$T/gnupg2"
gpg --batch --passphrase '' --quick-gen-key 'Cloister Test <t@example.com>' ed25519 sign never > "$T/gpg.log" 2>&1
FPR=$(gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
gpg --armor --export "$FPR" > "$T/pubkey.asc"
GNUPGHOME=$T/gnupg2 gpg --batch --passphrase '' --quick-gen-key 'Other <o@example.com>' ed25519 sign never >> "$T/gpg.log" 2>&1
OFPR=$(GNUPGHOME=$T/gnupg2 gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
mkdir -p "$T/regd" "$T/lookaside"
cat > "$T/regd/default.yaml" <<Y
docker:
  $REG:
    lookaside: file://$T/lookaside
    lookaside-staging: file://$T/lookaside
Y
skopeo --registries.d "$T/regd" copy -q --dest-tls-verify=false --sign-by "$FPR" "oci:$T/oci:t" \
    "docker://$REG/signed/app:1" > "$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "skopeo --sign-by"; }
push "oci:$T/oci:u" "$REG/signed/unsigned:1"
push "oci:$T/oci:u" "$REG/demo/app:1"
find "$T/lookaside" -name 'signature-1' | grep -q . || fail "no lookaside signature written"
cat > "$T/gpg-policy.json" <<P
{"default":[{"type":"reject"}],"transports":{"docker":{"$REG/signed":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"$T/pubkey.asc"}]}}}
P
reference_unpack "$REG/signed/app:1" "$T/ref"
cloister_pull "$REG/signed/app:1" "$T/g-ok" --flat --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 0 "signedBy: GPG signature from the lookaside"
compare "$T/ref/rootfs" "$T/g-ok" "signed image equals skopeo + umoci"
cloister_pull "$REG/signed/app:1" "$T/g-store" --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 0 "signedBy in the layered store"
cloister_pull "$REG/signed/unsigned:1" "$T/g-x1" --flat --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 5 "signedBy: an unsigned image"
grep -q 'no signature exists' "$T/pull.err" || fail "the refusal does not say the signature is missing"
cloister_pull "$REG/demo/app:1" "$T/g-x2" --flat --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 5 "default reject for an unscoped repository"
# a signature by another key in the lookaside
m=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/signed/app/manifests/1" | sha256sum | cut -d' ' -f1)
sigdir=$(find "$T/lookaside" -type d -name "app@sha256=$m")
[ -n "$sigdir" ] || fail "lookaside folder for sha256:$m not found"
mv "$sigdir/signature-1" "$T/good-signature"
printf '{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"sha256:%s"},"identity":{"docker-reference":"%s/signed/app:1"}},"optional":{}}' \
    "$m" "$REG" | GNUPGHOME=$T/gnupg2 gpg --batch --sign --local-user "$OFPR" > "$sigdir/signature-1" 2>> "$T/gpg.log"
cloister_pull "$REG/signed/app:1" "$T/g-x3" --flat --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 4 "signedBy: a signature by another key"
grep -q "not one of the policy's keys" "$T/pull.err" || fail "the refusal does not name the key problem"
# a good signature, but made for another image name
printf '{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"sha256:%s"},"identity":{"docker-reference":"%s/signed/other:1"}},"optional":{}}' \
    "$m" "$REG" | gpg --batch --sign --local-user "$FPR" > "$sigdir/signature-1" 2>> "$T/gpg.log"
cloister_pull "$REG/signed/app:1" "$T/g-x4" --flat --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 4 "signedBy: a valid signature for another image"
# the good one next to a bad one: one valid signature suffices
cp "$T/good-signature" "$sigdir/signature-2"
cloister_pull "$REG/signed/app:1" "$T/g-two" --flat --policy "$T/gpg-policy.json" --registries-d "$T/regd"
expect_rc 0 "a bad and a good signature"
for d in g-x1 g-x2 g-x3 g-x4; do [ ! -e "$T/$d" ] || fail "refused pull left $d"; done

# ---- sigstore (cosign format), signed with openssl ----
openssl ecparam -name prime256v1 -genkey -noout -out "$T/cosign.key"
openssl ec -in "$T/cosign.key" -pubout -out "$T/cosign.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/cosign2.key"
openssl ec -in "$T/cosign2.key" -pubout -out "$T/cosign2.pub" 2>/dev/null
push "oci:$T/oci:t" "$REG/cosign/app:1"
push "oci:$T/oci:u" "$REG/cosign/unsigned:1"
cm=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/cosign/app/manifests/1" | sha256sum | cut -d' ' -f1)
# upload_blob FILE: monolithic blob upload (POST then PUT with the digest)
upload_blob() {
    d=sha256:$(sha256sum "$1" | cut -d' ' -f1)
    loc=$(curl -s -D - -o /dev/null -X POST "http://$REG/v2/cosign/app/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case "$loc" in http*) ;; *) loc="http://$REG$loc" ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$1" "$loc&digest=$d" > /dev/null \
        || fail "blob upload"
    echo "$d"
}
printf '{"critical":{"identity":{"docker-reference":"%s/cosign/app:1"},"image":{"docker-manifest-digest":"sha256:%s"},"type":"cosign container image signature"},"optional":{"creator":"cloister test"}}' \
    "$REG" "$cm" > "$T/payload.json"
openssl dgst -sha256 -sign "$T/cosign.key" "$T/payload.json" | base64 -w0 > "$T/payload.sig"
pd=$(upload_blob "$T/payload.json")
printf '{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$pd" > "$T/sigcfg.json"
cd_=$(upload_blob "$T/sigcfg.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"%s","size":%d,"annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}' \
    "$cd_" "$(wc -c < "$T/sigcfg.json")" "$pd" "$(wc -c < "$T/payload.json")" "$(cat "$T/payload.sig")" > "$T/sigman.json"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$T/sigman.json" \
    "http://$REG/v2/cosign/app/manifests/sha256-$cm.sig" > /dev/null || fail "signature manifest upload"
cat > "$T/cosign-policy.json" <<P
{"default":[{"type":"reject"}],"transports":{"docker":{"$REG/cosign":[{"type":"sigstoreSigned","keyPath":"$T/cosign.pub","signedIdentity":{"type":"matchRepository"}}]}}}
P
sed "s|$T/cosign.pub|$T/cosign2.pub|" "$T/cosign-policy.json" > "$T/cosign2-policy.json"
cloister_pull "$REG/cosign/app:1" "$T/c-ok" --flat --policy "$T/cosign-policy.json"
expect_rc 0 "sigstoreSigned: cosign signature attached to the image"
compare "$T/ref/rootfs" "$T/c-ok" "cosign-signed image equals skopeo + umoci"
cloister_pull "$REG/cosign/app:1" "$T/c-x1" --flat --policy "$T/cosign2-policy.json"
expect_rc 4 "sigstoreSigned: another key"
cloister_pull "$REG/cosign/unsigned:1" "$T/c-x2" --flat --policy "$T/cosign-policy.json"
expect_rc 5 "sigstoreSigned: no signature"
for d in c-x1 c-x2; do [ ! -e "$T/$d" ] || fail "refused pull left $d"; done
echo "PASS image-signed"
