#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /metrics under trustee's names and labels (kbs/docs/metrics.md), scraped after real traffic:
# every trustee metric is there with its type; attestation successes and failures carry
# tee_type; resource reads and writes carry resource_path; the HTTP histograms have trustee's
# buckets. Twins: a failed attestation counts as a failure (not a success), a denied read
# counts as a policy violation (not an approval), and no trustee metric has a label trustee
# does not give it.
. "$(dirname "$0")/lib.sh"

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
scrape() { curl -fsS "$URL/metrics" > "$T/metrics" || fail "/metrics"; }
has() { grep -q "$1" "$T/metrics" || fail "no line matching '$1' in /metrics: $(grep "${2:-kbs_}" "$T/metrics" | head -20)"; }

scrape
for m in kbs_build_info:gauge kbs_http_requests_total:counter \
    kbs_http_request_duration_seconds:histogram kbs_http_request_size_bytes:histogram \
    kbs_http_response_size_bytes:histogram kbs_http_active_connections:gauge \
    kbs_resource_reads_total:counter kbs_resource_writes_total:counter \
    kbs_policy_evaluations_total:counter kbs_policy_approvals_total:counter \
    kbs_policy_violations_total:counter kbs_policy_errors_total:counter \
    kbs_attestation_requests_total:counter kbs_attestation_successes_total:counter \
    kbs_attestation_failures_total:counter kbs_attestation_errors_total:counter \
    kbs_auth_requests_total:counter kbs_auth_successes_total:counter kbs_auth_errors_total:counter; do
    has "^# TYPE ${m%%:*} ${m#*:}$"
done
ok "every metric of trustee's metrics.md is there with its type"
for le in 0.0005 0.001 0.005 0.01 0.05 0.5 1 +Inf; do has "^kbs_http_request_duration_seconds_bucket{le=\"$le\"} "; done
for le in 32 128 512 2048 8192 +Inf; do has "^kbs_http_request_size_bytes_bucket{le=\"$le\"} "; done
ok "histograms have trustee's buckets"

printf 'v' > "$T/v"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path r/k/v --file "$T/v" || fail "set"
"$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v > /dev/null || fail "get"
# a failed attestation: a challenge, then evidence for another nonce
"$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v --out "$T/got" > /dev/null || fail "second get"
curl -sS -c "$T/jar" -o /dev/null -X POST "$URL/kbs/v0/auth" -H 'Content-Type: application/json' \
    -d '{"version":"0.4.0","tee":"sample","extra-params":""}'
curl -sS -b "$T/jar" -o /dev/null -X POST "$URL/kbs/v0/attest" -H 'Content-Type: application/json' \
    -d '{"tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},"tee-evidence":{"primary_evidence":{}},"runtime-data":{"nonce":"wrong","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}}'
curl -sS -b "$T/jar" -o /dev/null -X POST "$URL/kbs/v0/attest" -H 'Content-Type: application/json' -d 'not json'
"$CLI_BIN" kbs set-resource-policy --url "$URL" --admin-key "$T/admin.key" \
    --file "$SRC/policies/resource/deny_all.rego" || fail "deny-all"
"$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v > /dev/null 2>&1 && fail "deny-all released"
scrape
has '^kbs_attestation_successes_total{tee_type="sample"} 3$'
has '^kbs_attestation_failures_total{tee_type="sample"} 1$'
has '^kbs_attestation_errors_total 1$'
has '^kbs_resource_writes_total{resource_path="r/k/v"} 1$'
has '^kbs_resource_reads_total{resource_path="r/k/v"} 2$'
has '^kbs_policy_approvals_total 2$'
has '^kbs_policy_violations_total 1$'
has '^kbs_auth_successes_total 4$'
has '^kbs_http_active_connections 0$'
ok "attestations by tee_type, resource reads/writes by resource_path, policy results counted"
if grep -E '^kbs_(http_requests|policy_[a-z]+|attestation_(requests|errors)|auth_[a-z]+)_total\{' "$T/metrics"; then
    fail "a trustee metric carries a label trustee does not give it"
fi
if grep -E '^kbs_attestation_(successes|failures)_total\{' "$T/metrics" | grep -v '^[a-z_]*{tee_type="[a-z-]*"} [0-9]*$'; then
    fail "attestation results carry other labels than tee_type"
fi
ok "labels as trustee's: none beyond tee_type and resource_path"
has '^kbs_attestations_total{result="success"} 3$'
ok "Cloister's own names are kept beside trustee's"
