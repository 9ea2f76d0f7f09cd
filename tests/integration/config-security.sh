#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The security switches of trustee's KBS configuration, enforced:
#  - [policy_engine] policy_path: the resource policy is read from that file; allow-all
#    there releases a secret, deny-all there blocks it (end to end with the sample TEE);
#    a policy_path that does not compile stops the start; SIGHUP re-reads it, and a broken
#    file on SIGHUP keeps the policy in force and the process alive.
#  - TLS: tls_profile = "modern" / tls_min_version = "1.3" refuse `openssl s_client -tls1_2`
#    (twin: intermediate accepts it).
#  - The resource policy is stored under trustee's key "resource-policy" (namespace kbs); a
#    store written under Cloister's older key "resource-policy.rego" is moved once.
. "$(dirname "$0")/lib.sh"

make_admin_key
A() { echo "--url $URL --admin-key $T/admin.key"; }
get() { "$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v > "$T/got" 2> "$T/err"; }
printf 'the secret' > "$T/v"

# ---- policy_path ----
cp "$SRC/policies/resource/allow_all.rego" "$T/policy.rego"
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "[policy_engine]
policy_path = \"$T/policy.rego\""
start_kbs "$T/kbs.toml"
"$CLI_BIN" kbs set-resource $(A) --path r/k/v --file "$T/v" || fail "set-resource"
get || fail "allow_all in policy_path: $(cat "$T/err")"
cmp -s "$T/got" "$T/v" || fail "released secret differs"
ok "policy_path allow_all.rego releases the secret"

cp "$SRC/policies/resource/deny_all.rego" "$T/policy.rego"
kill -HUP "$KBS_PID"
sleep 0.5
kill -0 "$KBS_PID" || fail "SIGHUP killed the KBS"
if get; then fail "deny_all in policy_path released the secret"; fi
grep -q PolicyDeny "$T/err" || fail "denial is not PolicyDeny: $(cat "$T/err")"
ok "deny_all.rego written to policy_path and SIGHUP: the secret is not released"

printf 'package policy\nallow if {\n' > "$T/policy.rego"
kill -HUP "$KBS_PID"
sleep 0.5
kill -0 "$KBS_PID" || fail "SIGHUP with a broken policy killed the KBS"
grep -q 'SIGHUP: .*policy in force is kept' "$T/kbs.log" || fail "broken reload not logged"
if get; then fail "a broken policy file on SIGHUP replaced deny_all"; fi
ok "a broken policy_path on SIGHUP is logged, the process lives and deny_all stays"

# an admin upload goes to policy_path
"$CLI_BIN" kbs set-resource-policy $(A) --file "$SRC/policies/resource/allow_all.rego" || fail "upload"
cmp -s "$T/policy.rego" "$SRC/policies/resource/allow_all.rego" || fail "upload not written to policy_path"
get || fail "uploaded allow_all not in force"
[ ! -e "$T/store/kbs/resource-policy" ] || fail "upload went to the store despite policy_path"
ok "an admin policy upload is written to policy_path"
stop_kbs

# deny-all placed in policy_path before the start: enforced from the first request
cp "$SRC/policies/resource/deny_all.rego" "$T/policy.rego"
start_kbs "$T/kbs.toml"
if get; then fail "deny_all at start released"; fi
ok "deny_all.rego in policy_path at start blocks the release"
stop_kbs

# twins: a missing or broken policy_path stops the start (fails closed)
rm "$T/policy.rego"
rc=0; timeout 10 "$KBS_BIN" -c "$T/kbs.toml" > "$T/start.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "started without its policy_path"
grep -q policy_path "$T/start.log" || fail "missing policy_path not named: $(cat "$T/start.log")"
printf 'package policy\nallow if {\n' > "$T/policy.rego"
rc=0; "$KBS_BIN" -c "$T/kbs.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ $rc -ne 0 ] || fail "--check passed a broken policy_path"
grep -q "policy_engine.policy_path" "$T/err" || fail "--check: broken policy not named: $(cat "$T/err")"
ok "a missing or broken policy_path stops the start and fails --check"

# ---- resource policy under trustee's key, with migration of the old one ----
PORT=$(free_port)
write_config "$T/kbs2.toml" "$PORT"
start_kbs "$T/kbs2.toml"
"$CLI_BIN" kbs set-resource-policy $(A) --file "$SRC/policies/resource/deny_all.rego" || fail "upload"
[ -f "$T/store/kbs/resource-policy" ] || fail "policy not stored under kbs/resource-policy: $(ls "$T/store/kbs")"
ok "the resource policy is stored under trustee's key (namespace kbs, key resource-policy)"
stop_kbs
mv "$T/store/kbs/resource-policy" "$T/store/kbs/resource-policy.rego"
start_kbs "$T/kbs2.toml"
grep -q "migrated from store key 'resource-policy.rego' to 'resource-policy'" "$T/kbs.log" || fail "migration not said"
[ -f "$T/store/kbs/resource-policy" ] && [ ! -e "$T/store/kbs/resource-policy.rego" ] || fail "old key not moved"
"$CLI_BIN" kbs set-resource $(A) --path r/k/v --file "$T/v" || fail "set-resource"
if get; then fail "migrated deny_all not in force"; fi
ok "a policy under the old key is moved once (and stays in force), with a warning"
stop_kbs

# ---- TLS versions ----
need timeout
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" \
    -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
# tls_kbs PROFILE_LINES: starts an HTTPS KBS with these [http_server] lines
tls_kbs() {
    PORT=$(free_port)
    write_config "$T/tls.toml" "$PORT"
    sed -i "s|^insecure_http = true|private_key = \"$T/tls.key\"\ncertificate = \"$T/tls.crt\"\n$1|" "$T/tls.toml"
    URL="https://127.0.0.1:$PORT"
    "$KBS_BIN" -c "$T/tls.toml" >>"$T/kbs.log" 2>&1 &
    KBS_PID=$!
    PIDS="$PIDS $KBS_PID"
    i=0
    until curl -fsS --cacert "$T/tls.crt" "$URL/healthz" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "TLS KBS did not come up ($1)"; sleep 0.1
    done
}
s_client() { # s_client VERSION_FLAG → 0 when a session was established
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" "$1" -CAfile "$T/tls.crt" > "$T/s.out" 2>&1
}
for prof in 'tls_profile = "modern"' 'tls_min_version = "1.3"' \
    'tls_profile = "custom"\ntls_min_version = "1.3"\ntls_ciphers = "TLS_AES_256_GCM_SHA384"\ntls_groups = "X25519"'; do
    tls_kbs "$prof"
    if s_client -tls1_2; then fail "$prof: openssl s_client -tls1_2 connected"; fi
    s_client -tls1_3 || fail "$prof: TLS 1.3 refused: $(tail -5 "$T/s.out")"
    ok "$(printf "$prof" | tr '\n' ' '): s_client -tls1_2 refused, -tls1_3 connects"
    stop_kbs
done
tls_kbs 'tls_profile = "custom"\ntls_min_version = "1.3"\ntls_ciphers = "TLS_AES_256_GCM_SHA384"'
echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 \
    -CAfile "$T/tls.crt" > "$T/s.out" 2>&1 && fail "a cipher suite outside tls_ciphers connected"
ok "tls_ciphers: a TLS 1.3 suite outside the list is refused"
stop_kbs
tls_kbs 'tls_profile = "intermediate"'
s_client -tls1_2 || fail "intermediate: TLS 1.2 refused: $(tail -5 "$T/s.out")"
ok "twin: the intermediate profile accepts s_client -tls1_2"
stop_kbs
