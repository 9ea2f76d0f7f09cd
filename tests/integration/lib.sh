# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the integration tests: locate the binaries, pick free loopback ports,
# start cloister-kbs with a generated configuration, start swtpm, clean up on exit. Sourced,
# not run (image-lib.sh sources it too).
set -eu

SRC=${CLOISTER_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CLOISTER_BUILD:-$SRC/build}
KBS_BIN=$BUILD/src/cmd/cloister-kbs
CLI_BIN=$BUILD/src/cmd/cloister
T=$(mktemp -d "/tmp/${T_PREFIX:-cloister-it}.XXXXXX") # T_PREFIX: set by a sourcing library
PIDS=""
CLEANUP_HOOKS="" # functions run by cleanup after the processes in PIDS are gone

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    for h in $CLEANUP_HOOKS; do "$h" || true; done
    if command -v stop_postgres >/dev/null 2>&1; then stop_postgres; fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

skip() { echo "SKIP: $*"; exit 77; }
# show_logs: what fail prints after its message (a sourcing library may redefine it)
show_logs() { if [ -f "$T/kbs.log" ]; then tail -30 "$T/kbs.log"; fi; }
fail() { echo "FAIL: $*"; show_logs; exit 1; }
ok() { echo "ok - $*"; }

need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }

[ -x "$KBS_BIN" ] || fail "cloister-kbs not built at $KBS_BIN"
[ -x "$CLI_BIN" ] || fail "cloister not built at $CLI_BIN"
need openssl curl python3

# A free TCP port on 127.0.0.1, below the kernel's ephemeral range (32768 and up), and never
# one this test was given before. Callers often take several ports before binding any: a port
# from the ephemeral range could meanwhile become the local end of an outgoing connection (a
# replica's to its database), and the kernel may hand one free port out twice. (Called in
# $(...), a subshell: the ports given are kept in a file.)
free_port() {
    python3 "$SRC/tests/integration/free_port.py" "${T:?}/.ports-given"
}

# Writes an admin Ed25519 key pair: $T/admin.key (private), $T/admin.pub (public).
make_admin_key() {
    openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
    openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
}

# write_config FILE PORT [extra TOML appended]. CLOISTER_TEST_STORE=Postgres|Redis puts
# every piece of state in a real database started for the test (store-lib.sh) instead of
# LocalFs folders.
write_config() {
    if [ -n "${CLOISTER_TEST_STORE:-}" ]; then
        if [ -z "${STORE_TOML:-}" ]; then . "$SRC/tests/integration/store-lib.sh"; start_store "$CLOISTER_TEST_STORE"; fi
        cat >"$1" <<CFG
[http_server]
sockets = ["127.0.0.1:$2"]
insecure_http = true

[admin]
type = "Simple"

[[admin.personas]]
id = "admin"
public_key_path = "$T/admin.pub"

[attestation_service]
type = "coco_as_builtin"
timeout = 5
allow_sample_tee_insecure = true

$STORE_TOML
CFG
        if [ $# -ge 3 ]; then printf '%s\n' "$3" >>"$1"; fi
        return 0
    fi
    cat >"$1" <<CFG
[http_server]
sockets = ["127.0.0.1:$2"]
insecure_http = true

[admin]
type = "Simple"

[[admin.personas]]
id = "admin"
public_key_path = "$T/admin.pub"

[attestation_service]
type = "coco_as_builtin"
timeout = 5
allow_sample_tee_insecure = true

[storage_backend]
storage_type = "LocalFs"

[storage_backend.backends.local_fs]
dir_path = "$T/store"

[[plugins]]
name = "resource"
type = "LocalFs"
dir_path = "$T/resources"
CFG
    if [ $# -ge 3 ]; then printf '%s\n' "$3" >>"$1"; fi
}

# start_kbs CONFIG: starts the daemon, waits for /healthz, sets KBS_PID and URL.
start_kbs() {
    port=$(sed -n 's/^sockets = \["127.0.0.1:\([0-9]*\)"\]/\1/p' "$1")
    URL="http://127.0.0.1:$port"
    "$KBS_BIN" -c "$1" >>"$T/kbs.log" 2>&1 &
    KBS_PID=$!
    PIDS="$PIDS $KBS_PID"
    i=0
    until curl -fsS "$URL/healthz" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "cloister-kbs did not come up"
        kill -0 "$KBS_PID" 2>/dev/null || fail "cloister-kbs exited at start"
        sleep 0.1
    done
}

stop_kbs() {
    kill "$KBS_PID" 2>/dev/null || true
    wait "$KBS_PID" 2>/dev/null || true
}

admin_token() { "$CLI_BIN" kbs admin-token --admin-key "$T/admin.key"; }

# http METHOD PATH [curl args...]: prints the status; body in $T/body
http() {
    m=$1; p=$2; shift 2
    curl -sS -o "$T/body" -w '%{http_code}' -X "$m" "$URL$p" "$@"
}

expect_status() { # expect_status WANT GOT WHAT
    [ "$1" = "$2" ] || fail "$3: status $2, wanted $1 (body: $(head -c 300 "$T/body" 2>/dev/null))"
    ok "$3 => $2"
}

. "$SRC/tests/integration/swtpm-lib.sh"
