#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Interop with what only skopeo >= 1.18 writes: layers encrypted through the ocicrypt
# key-provider protocol (a "cmd" provider doing both wrap and unwrap), and sigstore (cosign
# format) signatures made by skopeo itself. Debian 12 ships skopeo 1.9.3, which can do
# neither; set SKOPEO118 to a skopeo 1.18 command (specs/test-peers.md shows how to run the
# Debian trixie binary with its own loader) to run this test, otherwise it is skipped.
. "$(dirname "$0")/image-lib.sh"
[ -n "${SKOPEO118:-}" ] || skip "SKOPEO118 is not set: key-provider encryption and sigstore signing need skopeo 1.18, \
which is not a Debian 12 package (see specs/test-peers.md)"
"$SKOPEO118" --version 2>/dev/null | grep -q 'version 1\.\(1[89]\|[2-9][0-9]\)' || skip "SKOPEO118 is not skopeo >= 1.18"
need jq base64

start_registry reg
make_image "$T/oci" t base top
push "oci:$T/oci:t" "$REG/demo/app:plain"
reference_unpack "$REG/demo/app:plain" "$T/ref"

# ---- key provider: skopeo wraps, cloister unwraps with the same provider ----
cat > "$T/toykp.sh" <<'SH'
#!/bin/sh
in=$(cat)
op=$(printf '%s' "$in" | jq -r .op)
if [ "$op" = keywrap ]; then
    opts=$(printf '%s' "$in" | jq -r .keywrapparams.optsdata)
    printf '{"keywrapresults":{"annotation":"%s"}}' "$(printf 'TOY:%s' "$opts" | base64 -w0)"
else
    ann=$(printf '%s' "$in" | jq -r .keyunwrapparams.annotation | base64 -d)
    case "$ann" in TOY:*) ;; *) exit 1 ;; esac
    printf '{"keyunwrapresults":{"optsdata":"%s"}}' "${ann#TOY:}"
fi
SH
chmod +x "$T/toykp.sh"
printf '{"key-providers":{"toykp":{"cmd":{"path":"%s","args":[]}}}}' "$T/toykp.sh" > "$T/ocicrypt.json"
OCICRYPT_KEYPROVIDER_CONFIG=$T/ocicrypt.json "$SKOPEO118" copy -q --dest-tls-verify=false \
    --encryption-key provider:toykp "oci:$T/oci:t" "docker://$REG/demo/app:kp" > "$T/skopeo.log" 2>&1 \
    || { cat "$T/skopeo.log"; fail "skopeo 1.18 key-provider encryption"; }
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/demo/app/manifests/kp" \
    | grep -q 'enc.keys.provider.toykp' || fail "no key-provider annotation"
cloister_pull "$REG/demo/app:kp" "$T/kp" --flat --policy "$T/accept.json" --keyprovider-config "$T/ocicrypt.json"
expect_rc 0 "layers encrypted by skopeo 1.18 through the key provider"
compare "$T/ref/rootfs" "$T/kp" "key-provider image equals skopeo + umoci of the plain image"
cloister_pull "$REG/demo/app:kp" "$T/kp-x" --flat --policy "$T/accept.json"
expect_rc 4 "the same without a key provider"

# ---- sigstore: skopeo signs, cloister verifies ----
printf 'cloister-test' > "$T/pass.txt"
"$SKOPEO118" generate-sigstore-key --output-prefix "$T/cosign" --passphrase-file "$T/pass.txt" > "$T/skopeo.log" 2>&1 \
    || { cat "$T/skopeo.log"; fail "generate-sigstore-key"; }
"$SKOPEO118" generate-sigstore-key --output-prefix "$T/cosign2" --passphrase-file "$T/pass.txt" > "$T/skopeo.log" 2>&1
mkdir -p "$T/regd"
printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "$REG" > "$T/regd/default.yaml"
"$SKOPEO118" --registries.d "$T/regd" copy -q --dest-tls-verify=false \
    --sign-by-sigstore-private-key "$T/cosign.private" --sign-passphrase-file "$T/pass.txt" \
    "oci:$T/oci:t" "docker://$REG/signed/app:cosign" > "$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "sigstore signing"; }
push "oci:$T/oci:t" "$REG/signed/unsigned:1"
for k in cosign cosign2; do
    printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s/signed":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"matchRepository"}}]}}}' \
        "$REG" "$T/$k.pub" > "$T/$k-policy.json"
done
cloister_pull "$REG/signed/app:cosign" "$T/sig" --flat --policy "$T/cosign-policy.json" --registries-d "$T/regd"
expect_rc 0 "sigstoreSigned: signature made by skopeo 1.18"
compare "$T/ref/rootfs" "$T/sig" "sigstore-signed image equals skopeo + umoci"
cloister_pull "$REG/signed/app:cosign" "$T/sig-x1" --flat --policy "$T/cosign2-policy.json" --registries-d "$T/regd"
expect_rc 4 "sigstoreSigned: another key"
cloister_pull "$REG/signed/unsigned:1" "$T/sig-x2" --flat --policy "$T/cosign-policy.json" --registries-d "$T/regd"
expect_rc 5 "sigstoreSigned: no signature"
echo "PASS image-skopeo118"
