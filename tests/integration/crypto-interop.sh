#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# crypto-interop: JOSE objects made by src/crypto (through tests/integration/crypto_tool) are
# checked by independent implementations (the jose CLI on libjose, the openssl CLI), and
# theirs are checked by src/crypto. Every positive check has a tamper twin.
# Exits 77 (skip) when jose or openssl is absent.
set -eu

command -v jose >/dev/null 2>&1 || { echo "SKIP: jose CLI not installed"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl CLI not installed"; exit 77; }
BUILD=${CLOISTER_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
TOOL="$BUILD/tests/integration/crypto_tool"
[ -x "$TOOL" ] || { echo "FAIL: $TOOL is not built"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

# tamper FILE MEMBER OUT: copy of a JSON file with one character of a base64url member changed
tamper() {
    v=$("$TOOL" get "$1" "$2")
    pre=$(printf %s "$v" | cut -c1-10)
    c=$(printf %s "$v" | cut -c11)
    post=$(printf %s "$v" | cut -c12-)
    if [ "$c" = A ]; then c=B; else c=A; fi
    sed "s|\"$v\"|\"$pre$c$post\"|" "$1" > "$3"
    cmp -s "$1" "$3" && die "tamper of $2 changed nothing"
    return 0
}

# flip_jws FILE OUT: copy of a compact JWS with one signature character changed
flip_jws() {
    sig=$(cut -d. -f3 "$1")
    c=$(printf %s "$sig" | cut -c5)
    if [ "$c" = A ]; then c=B; else c=A; fi
    printf '%s.%s%s%s' "$(cut -d. -f1,2 "$1")" "$(printf %s "$sig" | cut -c1-4)" "$c" \
        "$(printf %s "$sig" | cut -c6-)" > "$2"
}

head -c 4099 /dev/urandom > "$T/msg"

# ---- ECDH-ES+A256KW: sealed by us, opened by jose; sealed by jose, opened by us ----
for crv in P-256 P-521; do
    k="$T/ec-$crv"
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$crv" -out "$k.pem" 2>/dev/null
    "$TOOL" jwk "$k.pem" ECDH-ES+A256KW private > "$k.jwk"
    "$TOOL" jwk "$k.pem" ECDH-ES+A256KW > "$k.pub.jwk"
    "$TOOL" seal "$k.pub.jwk" "$T/msg" > "$k.jwe"

    coord=43; [ "$crv" = P-521 ] && coord=88
    "$TOOL" get "$k.jwe" protected | jose b64 dec -i- > "$k.hdr"
    grep -Eq "^\{\"alg\":\"ECDH-ES\+A256KW\",\"enc\":\"A256GCM\",\"epk\":\{\"crv\":\"$crv\",\"kty\":\"EC\",\"x\":\"[A-Za-z0-9_-]{$coord}\",\"y\":\"[A-Za-z0-9_-]{$coord}\"\}\}\$" "$k.hdr" ||
        die "$crv: protected header not byte-exact: $(cat "$k.hdr")"
    ok "$crv ECDH-ES+A256KW protected header is byte-exact"

    jose jwe dec -i "$k.jwe" -k "$k.jwk" -O "$k.out" || die "$crv: jose could not open our JWE"
    cmp -s "$T/msg" "$k.out" || die "$crv: jose recovered other bytes"
    ok "$crv ECDH-ES+A256KW sealed by crypto_tool, opened by jose"
    for m in ciphertext tag iv encrypted_key; do
        tamper "$k.jwe" "$m" "$k.bad"
        if jose jwe dec -i "$k.bad" -k "$k.jwk" -O "$k.out" 2>/dev/null; then die "$crv: jose opened a JWE with $m flipped"; fi
        if "$TOOL" open "$k.pem" "$k.bad" > "$k.out" 2>/dev/null; then die "$crv: we opened a JWE with $m flipped"; fi
    done
    ok "$crv tamper twins (ciphertext, tag, iv, encrypted_key) refused by jose and by us"

    # libjose puts "alg" in the protected header when told to, and "epk" in the per-recipient header
    jose jwe enc -i '{"protected":{"enc":"A256GCM","alg":"ECDH-ES+A256KW"}}' -I "$T/msg" -k "$k.pub.jwk" \
        -o "$k.jose.jwe"
    "$TOOL" open "$k.pem" "$k.jose.jwe" > "$k.out" || die "$crv: we could not open jose's JWE"
    cmp -s "$T/msg" "$k.out" || die "$crv: we recovered other bytes from jose's JWE"
    "$TOOL" open "$k.jwk" "$k.jose.jwe" > "$k.out" || die "$crv: private JWK failed"
    cmp -s "$T/msg" "$k.out" || die "$crv: private JWK recovered other bytes"
    ok "$crv ECDH-ES+A256KW sealed by jose, opened by crypto_tool (PEM and JWK keys)"
    tamper "$k.jose.jwe" ciphertext "$k.bad"
    if "$TOOL" open "$k.pem" "$k.bad" > "$k.out" 2>/dev/null; then die "$crv: we opened jose's tampered JWE"; fi
    other="$T/other-$crv"
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$crv" -out "$other.pem" 2>/dev/null
    if "$TOOL" open "$other.pem" "$k.jose.jwe" > "$k.out" 2>/dev/null; then die "$crv: another key opened it"; fi
    ok "$crv jose's JWE: tampered ciphertext and another key refused"
done

# ---- RSA-OAEP-256: the CEK recovered by openssl, the content opened outside src/crypto ----
r="$T/rsa"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$r.pem" 2>/dev/null
"$TOOL" jwk "$r.pem" RSA-OAEP-256 > "$r.pub.jwk"
"$TOOL" seal "$r.pub.jwk" "$T/msg" > "$r.jwe"
[ "$("$TOOL" get "$r.jwe" protected | jose b64 dec -i-)" = '{"alg":"RSA-OAEP-256","enc":"A256GCM"}' ] ||
    die "RSA-OAEP-256 protected header not byte-exact"
ok "RSA-OAEP-256 protected header is byte-exact"
"$TOOL" get "$r.jwe" encrypted_key | jose b64 dec -i- -O "$r.ek"
openssl pkeyutl -decrypt -inkey "$r.pem" -in "$r.ek" -out "$r.cek" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 || die "openssl could not unwrap the CEK"
[ "$(wc -c < "$r.cek")" -eq 32 ] || die "CEK is not 32 bytes"
ok "RSA-OAEP-256 CEK (SHA-256, MGF1-SHA-256) recovered by openssl pkeyutl, 32 bytes"
if openssl pkeyutl -decrypt -inkey "$r.pem" -in "$r.ek" -out "$r.cek1" -pkeyopt rsa_padding_mode:oaep \
    2>/dev/null; then die "OAEP with SHA-1 also unwrapped the CEK"; fi
ok "RSA-OAEP-256 twin: OAEP with SHA-1 does not unwrap it"
"$TOOL" gcm-open "$r.cek" "$r.jwe" > "$r.out" || die "GCM open with openssl's CEK failed"
cmp -s "$T/msg" "$r.out" || die "GCM open recovered other bytes"
ok "RSA-OAEP-256 content opened with openssl's CEK through EVP directly"
for m in tag ciphertext iv protected; do
    tamper "$r.jwe" "$m" "$r.bad"
    if "$TOOL" gcm-open "$r.cek" "$r.bad" > "$r.out" 2>/dev/null; then die "GCM opened with $m flipped"; fi
    if "$TOOL" open "$r.pem" "$r.bad" > "$r.out" 2>/dev/null; then die "we opened RSA-OAEP-256 with $m flipped"; fi
done
"$TOOL" open "$r.pem" "$r.jwe" > "$r.out" && cmp -s "$T/msg" "$r.out" || die "our own RSA-OAEP-256 open failed"
ok "RSA-OAEP-256 tamper twins refused; our own open recovers the message"

# ---- RSA1_5 (deprecated, still interoperable): both directions with jose ----
"$TOOL" jwk "$r.pem" RSA1_5 > "$r.15.pub.jwk"
"$TOOL" jwk "$r.pem" RSA1_5 private > "$r.15.jwk"
"$TOOL" seal "$r.15.pub.jwk" "$T/msg" > "$r.15.jwe" 2>/dev/null
jose jwe dec -i "$r.15.jwe" -k "$r.15.jwk" -O "$r.out" || die "jose could not open our RSA1_5 JWE"
cmp -s "$T/msg" "$r.out" || die "jose recovered other bytes (RSA1_5)"
jose jwe enc -i '{"protected":{"enc":"A256GCM","alg":"RSA1_5"}}' -I "$T/msg" -k "$r.15.pub.jwk" -o "$r.15j.jwe"
"$TOOL" open "$r.pem" "$r.15j.jwe" > "$r.out" 2>/dev/null || die "we could not open jose's RSA1_5 JWE"
cmp -s "$T/msg" "$r.out" || die "we recovered other bytes (RSA1_5)"
tamper "$r.15j.jwe" encrypted_key "$r.bad"
if "$TOOL" open "$r.pem" "$r.bad" > "$r.out" 2>/dev/null; then die "we opened RSA1_5 with a flipped key"; fi
ok "RSA1_5 both directions with jose; flipped encrypted_key refused"

# ---- JWS: ours verified by jose, jose's verified by us ----
for spec in ES256:EC:P-256 ES384:EC:P-384 ES512:EC:P-521 RS256:RSA:2048 PS256:RSA:2048 PS512:RSA:3072; do
    alg=${spec%%:*}
    rest=${spec#*:}
    kty=${rest%%:*}
    param=${rest#*:}
    s="$T/jws-$alg"
    if [ "$kty" = EC ]; then
        openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$param" -out "$s.pem" 2>/dev/null
    else
        openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$param" -out "$s.pem" 2>/dev/null
    fi
    "$TOOL" jwk "$s.pem" "$alg" > "$s.pub.jwk"
    "$TOOL" sign "$s.pem" "$alg" "$T/msg" > "$s.jws"
    jose jws ver -i "$s.jws" -k "$s.pub.jwk" -O "$s.out" || die "$alg: jose rejected our JWS"
    cmp -s "$T/msg" "$s.out" || die "$alg: jose returned another payload"
    flip_jws "$s.jws" "$s.bad"
    if jose jws ver -i "$s.bad" -k "$s.pub.jwk" -O "$s.out" 2>/dev/null; then die "$alg: jose accepted a flipped signature"; fi
    ok "$alg JWS signed by crypto_tool verified by jose; flipped signature refused"

    jose jwk gen -i "{\"alg\":\"$alg\"}" -o "$s.jose.jwk"
    jose jwk pub -i "$s.jose.jwk" -o "$s.jose.pub.jwk"
    jose jws sig -I "$T/msg" -k "$s.jose.jwk" -c -o "$s.jose.jws"
    "$TOOL" verify "$s.jose.pub.jwk" "$s.jose.jws" > "$s.out" || die "$alg: we rejected jose's JWS"
    cmp -s "$T/msg" "$s.out" || die "$alg: we returned another payload"
    flip_jws "$s.jose.jws" "$s.bad"
    if "$TOOL" verify "$s.jose.pub.jwk" "$s.bad" > "$s.out" 2>/dev/null; then die "$alg: we accepted a flipped signature"; fi
    if "$TOOL" verify "$s.pub.jwk" "$s.jose.jws" > "$s.out" 2>/dev/null; then die "$alg: another key verified"; fi
    # jose's private JWK signs through us too
    "$TOOL" sign "$s.jose.jwk" "$alg" "$T/msg" > "$s.2.jws"
    jose jws ver -i "$s.2.jws" -k "$s.jose.pub.jwk" -O "$s.out" || die "$alg: jose rejected our JWS made with its key"
    ok "$alg JWS signed by jose verified by crypto_tool; flipped signature and another key refused"
done

# ---- EdDSA: checked by openssl over the signing input, both directions ----
e="$T/ed"
openssl genpkey -algorithm ED25519 -out "$e.pem" 2>/dev/null
openssl pkey -in "$e.pem" -pubout -out "$e.pub.pem"
"$TOOL" sign "$e.pem" EdDSA "$T/msg" > "$e.jws"
printf %s "$(cut -d. -f1,2 "$e.jws")" > "$e.input"
cut -d. -f3 "$e.jws" | tr -d '\n' | jose b64 dec -i- -O "$e.sig"
[ "$(wc -c < "$e.sig")" -eq 64 ] || die "EdDSA signature is not 64 bytes"
openssl pkeyutl -verify -pubin -inkey "$e.pub.pem" -rawin -in "$e.input" -sigfile "$e.sig" >/dev/null ||
    die "openssl rejected our EdDSA signature"
ok "EdDSA JWS signed by crypto_tool verified by openssl pkeyutl -rawin"
printf 'x' >> "$e.input"
if openssl pkeyutl -verify -pubin -inkey "$e.pub.pem" -rawin -in "$e.input" -sigfile "$e.sig" >/dev/null 2>&1; then
    die "openssl accepted a changed signing input"
fi
ok "EdDSA twin: changed signing input refused by openssl"
hdr=$(printf '{"alg":"EdDSA"}' | jose b64 enc -I- )
pay=$(jose b64 enc -I "$T/msg")
printf '%s.%s' "$hdr" "$pay" > "$e.input2"
openssl pkeyutl -sign -inkey "$e.pem" -rawin -in "$e.input2" -out "$e.sig2"
printf '%s.%s' "$(cat "$e.input2")" "$(jose b64 enc -I "$e.sig2")" > "$e.os.jws"
"$TOOL" verify "$e.pub.pem" "$e.os.jws" > "$e.out" || die "we rejected openssl's EdDSA signature"
cmp -s "$T/msg" "$e.out" || die "EdDSA: other payload"
flip_jws "$e.os.jws" "$e.bad"
if "$TOOL" verify "$e.pub.pem" "$e.bad" > "$e.out" 2>/dev/null; then die "we accepted a flipped EdDSA signature"; fi
ok "EdDSA JWS signed by openssl verified by crypto_tool; flipped signature refused"

echo "crypto-interop: $n checks passed"
