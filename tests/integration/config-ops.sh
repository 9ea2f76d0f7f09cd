#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Operations: --version on every daemon (git describe at build time), kbs_build_info and
# trustee's metric names in /metrics, /healthz (liveness) and /readyz (store + policy engine),
# --log-format json. Twins: a stored policy that no longer compiles leaves the KBS live but not
# ready; an unknown --log-format is refused.
. "$(dirname "$0")/lib.sh"

want=$(git -C "$SRC" describe --tags --always --dirty 2>/dev/null || true)
for b in cloister-kbs cloister-aa cloister-cdh; do
    v=$("$BUILD/src/cmd/$b" --version) || fail "$b --version"
    case "$v" in "$b "?*) ;; *) fail "$b --version printed '$v'" ;; esac
    # the tree may have changed since the build: compare the commit part only
    [ -z "$want" ] || [ "${v#"$b "}" = "$want" ] || [ "${v#"$b "}" = "${want%-dirty}" ] ||
        [ "${v#"$b "}" = "$want-dirty" ] || echo "note: $b built at ${v#"$b "}, tree now at $want"
    ok "$b --version: $v"
done

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
curl -fsS "$URL/metrics" > "$T/metrics" || fail "/metrics"
ver=$("$KBS_BIN" --version | cut -d' ' -f2)
grep -q "^kbs_build_info{version=\"$ver\",git_hash=\"$ver\",build_date=\"[^\"]*\"} 1$" "$T/metrics" ||
    fail "kbs_build_info missing: $(grep build_info "$T/metrics")"
for m in kbs_http_requests_total kbs_auth_requests_total kbs_attestation_requests_total \
    kbs_attestation_successes_total kbs_attestation_failures_total kbs_policy_evaluations_total \
    kbs_policy_approvals_total kbs_policy_violations_total; do
    grep -q "^# TYPE $m " "$T/metrics" || fail "metric $m missing"
done
ok "/metrics: kbs_build_info with the build's version and trustee's metric names"
printf 'v' > "$T/v"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path r/k/v --file "$T/v" || fail "set"
"$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v > /dev/null || fail "get"
curl -fsS "$URL/metrics" > "$T/metrics"
grep -q '^kbs_attestation_successes_total{tee_type="sample"} 1$' "$T/metrics" || fail "attestation not counted"
grep -q '^kbs_policy_approvals_total 1$' "$T/metrics" || fail "approval not counted"
ok "an attestation and a release are counted under trustee's names"
expect_status 200 "$(http GET /healthz)" "/healthz"
expect_status 200 "$(http GET /readyz)" "/readyz with a store and a compiled policy"
stop_kbs

# twin: a stored policy that no longer compiles: live, not ready
mkdir -p "$T/store/kbs"
printf 'package policy\nallow if {\n' > "$T/store/kbs/resource-policy"
start_kbs "$T/kbs.toml"
expect_status 200 "$(http GET /healthz)" "/healthz with a broken stored policy"
expect_status 503 "$(http GET /readyz)" "/readyz with a broken stored policy"
grep -q "policy engine" "$T/body" || fail "readyz does not say why: $(cat "$T/body")"
stop_kbs
rm "$T/store/kbs/resource-policy"

# --log-format json: every line a JSON object
PORT=$(free_port)
write_config "$T/kbs2.toml" "$PORT"
"$KBS_BIN" -c "$T/kbs2.toml" --log-format json > /dev/null 2> "$T/json.log" &
KBS_PID=$!
PIDS="$PIDS $KBS_PID"
URL="http://127.0.0.1:$PORT"
i=0
until curl -fsS "$URL/healthz" >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 100 ] || fail "json KBS"; sleep 0.1; done
curl -s "$URL/kbs/v0/nope\"quote" > /dev/null
stop_kbs
python3 - "$T/json.log" <<'PY' || fail "--log-format json wrote a line that is not JSON"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
for l in lines:
    d = json.loads(l)
    assert {"ts", "level", "msg", "src"} <= d.keys(), d
PY
ok "--log-format json: $(wc -l < "$T/json.log") lines, each a JSON object with ts/level/msg/src"
rc=0; "$KBS_BIN" -c "$T/kbs2.toml" --log-format xml > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "--log-format xml: exit $rc"
ok "an unknown --log-format is refused (exit 2)"

# --check opens the sealing keys the store names (a missing KEK used to pass --check).
head -c 32 /dev/urandom > "$T/kek"
printf '[http_server]\ninsecure_http = true\n[admin]\ninsecure_api = true\n[storage_backend]\nstorage_type = "Memory"\nencryption_key_path = "%s"\n' \
    "$T/kek" > "$T/seal.toml"
"$KBS_BIN" -c "$T/seal.toml" --check > /dev/null 2> "$T/err" || fail "--check with a KEK: $(cat "$T/err")"
ok "--check reads storage_backend.encryption_key_path"
sed -i "s|$T/kek|$T/missing-kek|" "$T/seal.toml"
rc=0; "$KBS_BIN" -c "$T/seal.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ $rc != 0 ] && grep -q "storage_backend.encryption_key_path" "$T/err" ||
    fail "--check passed a missing KEK (exit $rc): $(cat "$T/err")"
ok "--check refuses a missing KEK by name (exit $rc)"
