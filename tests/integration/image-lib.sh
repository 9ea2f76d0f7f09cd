# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the image integration tests: a real docker-registry on a free loopback
# port, images built with umoci from layers made by image-tools.py and pushed with skopeo,
# the reference unpack (skopeo copy + umoci unpack) and a file-by-file comparison. Sourced;
# sources lib.sh (locations, cleanup, skip/fail/ok/need, free_port).
AGENT_LIB_DIR=${AGENT_LIB_DIR:-$(cd "$(dirname "$0")" && pwd)}
T_PREFIX=cloister-img
. "$AGENT_LIB_DIR/lib.sh"
CLI=$CLI_BIN
TOOLS=$SRC/tests/integration/image-tools.py

gpg_cleanup() {
    if [ -d "$T/gnupg" ]; then gpgconf --homedir "$T/gnupg" --kill all >/dev/null 2>&1 || true; fi
    if [ -d "$T/gnupg2" ]; then gpgconf --homedir "$T/gnupg2" --kill all >/dev/null 2>&1 || true; fi
}
CLEANUP_HOOKS="$CLEANUP_HOOKS gpg_cleanup"
show_logs() { for l in "$T"/*.log; do if [ -f "$l" ]; then echo "--- $l"; tail -20 "$l"; fi; done; }

[ -x "$CLI" ] || fail "cloister not built at $CLI"
need docker-registry skopeo umoci python3 curl jq openssl
[ "$(id -u)" = 0 ] || skip "the reference unpack (umoci) and ownership checks need root"

# start_registry NAME [YAML appended to the config]: sets REG (host:port) and REG_PID; the
# storage is $T/NAME.storage so that tests can tamper with blobs on disk.
start_registry() {
    name=$1
    port=$(free_port)
    cat > "$T/$name.yml" <<CFG
version: 0.1
log: {level: warn, fields: {service: registry}}
storage:
  filesystem: {rootdirectory: $T/$name.storage}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
${2:-}
CFG
    docker-registry serve "$T/$name.yml" > "$T/$name.log" 2>&1 &
    REG_PID=$!
    PIDS="$PIDS $REG_PID"
    REG=127.0.0.1:$port
    i=0
    until curl -s -o /dev/null "http://$REG/v2/"; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "docker-registry did not start"; sleep 0.1
    done
}

# make_image OCIDIR TAG KIND...: an OCI layout with one layer per KIND (image-tools.py layer)
make_image() {
    dir=$1; tag=$2; shift 2
    [ -d "$dir" ] || umoci init --layout "$dir"
    umoci new --image "$dir:$tag"
    for kind in "$@"; do
        python3 "$TOOLS" layer "$kind" "$T/layer-$kind.tar"
        umoci raw add-layer --image "$dir:$tag" "$T/layer-$kind.tar"
    done
    umoci config --image "$dir:$tag" --config.cmd /bin/tool --author cloister-test >/dev/null
}

# push SRC DEST [skopeo copy args]: SRC is a skopeo reference (oci:dir:tag)
push() {
    s=$1; d=$2; shift 2
    skopeo copy -q --dest-tls-verify=false "$@" "$s" "docker://$d" > "$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "skopeo push $d"; }
}

# reference_unpack REF OUT [skopeo args]: skopeo copy to an OCI layout + umoci unpack → OUT/rootfs
reference_unpack() {
    r=$1; out=$2; shift 2
    lay=$T/ref-layout-$(echo "$r" | tr -c 'a-zA-Z0-9' _)
    rm -rf "$lay" "$out"
    skopeo copy -q --src-tls-verify=false "$@" "docker://$r" "oci:$lay:x" > "$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "skopeo copy $r"; }
    umoci unpack --image "$lay:x" "$out" > "$T/umoci.log" 2>&1 || { cat "$T/umoci.log"; fail "umoci unpack $r"; }
}

compare() {
    python3 "$TOOLS" compare "$1" "$2" > "$T/compare.out" || { cat "$T/compare.out"; fail "$3: trees differ"; }
    ok "$3 ($(tail -1 "$T/compare.out"))"
}

# cloister_pull REF DIR [args]: pull with the test registry allowed over plain HTTP; sets RC
cloister_pull() {
    r=$1; d=$2; shift 2
    set +e
    "$CLI" image pull "$r" "$d" --registry-insecure "${r%%/*}" -q "$@" > "$T/pull.out" 2> "$T/pull.err"
    RC=$?
    set -e
}

expect_rc() { # expect_rc WANT WHAT
    [ "$RC" = "$1" ] || { cat "$T/pull.err"; fail "$2: exit $RC, wanted $1"; }
    ok "$2 => exit $RC"
}

echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$T/accept.json"
echo '{"default":[{"type":"reject"}]}' > "$T/reject.json"
