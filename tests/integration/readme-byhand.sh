#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# README.md's by-hand section, run as written: the shell blocks between <!-- byhand:start -->
# and <!-- byhand:end --> run in a fresh folder (build/ and policies/ linked in, the port
# 8080 replaced by a free one) and must end with the secret fetched equal to the one set.
# Tamper twin: the same steps with the admin key swapped for one the KBS does not know fail
# at set-resource and fetch nothing.
. "$(dirname "$0")/lib.sh"

# extract_byhand OUT: the section's shell blocks, in order, as one script.
extract_byhand() {
    awk '/<!-- byhand:start/ {on=1; next} /<!-- byhand:end/ {on=0}
         on && /^```sh$/ {code=1; next} on && /^```$/ {code=0; next} on && code {print}' \
        "$SRC/README.md" > "$1"
    [ -s "$1" ] || fail "README.md has no shell block between the byhand markers"
}

# run_byhand DIR SCRIPT: runs SCRIPT in DIR as a user would; the background KBS ends after.
run_byhand() {
    mkdir -p "$1"
    ln -s "$BUILD" "$1/build"
    ln -s "$SRC/policies" "$1/policies"
    port=$(free_port)
    {
        echo 'set -e'
        echo 'trap '\''kill $(jobs -p) 2>/dev/null; wait'\'' EXIT'
        sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" "$2"
    } > "$1/byhand.sh"
    (cd "$1" && timeout 120 bash byhand.sh > out.log 2> err.log)
}

extract_byhand "$T/byhand.sh"
grep -q 'cloister kbs get-resource' "$T/byhand.sh" || fail "the by-hand section fetches no secret"

run_byhand "$T/run" "$T/byhand.sh" || { cat "$T/run/err.log"; fail "README by-hand steps failed"; }
[ -f "$T/run/fetched" ] || fail "no secret fetched"
cmp -s "$T/run/fetched" "$T/run/secret" || fail "fetched secret differs from the one set"
[ "$(tail -n 1 "$T/run/out.log")" = s3cret ] || fail "the last step does not print the secret"
ok "README by-hand: the secret set is the secret fetched"

# tamper twin: an admin key the KBS was not given
sed 's/--admin-key admin\.key/--admin-key other.key/' "$T/byhand.sh" > "$T/tampered.sh"
cmp -s "$T/byhand.sh" "$T/tampered.sh" && fail "the tamper did not change the script"
mkdir -p "$T/bad"
openssl genpkey -algorithm ed25519 -out "$T/bad/other.key" 2>/dev/null
if run_byhand "$T/bad" "$T/tampered.sh"; then fail "README steps with an unknown admin key passed"; fi
[ ! -f "$T/bad/fetched" ] || fail "a secret was fetched with an unknown admin key"
grep -q 'set-resource' "$T/bad/err.log" || fail "the failure does not name set-resource"
ok "README by-hand with a wrong admin key fails at set-resource"
