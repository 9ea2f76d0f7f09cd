#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The guest daemons' configuration files as upstream writes them: every aa.toml and cdh.toml
# example of guest-components goes through `cloister-aa --check` / `cloister-cdh --check`
# (exit 0, the effective configuration printed as JSON). Unknown keys are warned about by
# dotted path and the daemon still accepts the file (upstream ignores them); twins: a known
# key of the wrong type, an unsupported KBC and the unsafe upstream switch are refused by name.
. "$(dirname "$0")/lib.sh"

G=${CLOISTER_VECTORS:-/work/shared/vectors}/guest-components
[ -d "$G/attestation-agent" ] || skip "guest-components vectors not found at $G"
AA=$BUILD/src/cmd/cloister-aa
CDH=$BUILD/src/cmd/cloister-cdh

for f in "$G"/attestation-agent/attestation-agent/config.example.toml "$G"/attestation-agent/attestation-agent/test/*.toml; do
    "$AA" -c "$f" --check > "$T/out.json" 2> "$T/err" || fail "$f refused: $(cat "$T/err")"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "token_configs" in d' "$T/out.json" ||
        fail "$f: no effective configuration"
    ok "aa --check $(basename "$f")"
done
"$AA" -c "$G/attestation-agent/attestation-agent/config.example.toml" --check > "$T/out.json" 2>/dev/null
python3 - "$T/out.json" <<'PY' || fail "aa example: effective values wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["token_configs"]["kbs"]["url"] == "https://127.0.0.1:8080"
assert d["token_configs"]["coco_as"]["url"] == "http://127.0.0.1:8000"
assert d["eventlog_config"]["init_pcr"] == 17 and d["eventlog_config"]["enable_eventlog"] is False
PY
for f in "$G"/confidential-data-hub/example.config.toml "$G"/confidential-data-hub/hub/tests/cdh.toml; do
    "$CDH" -c "$f" --check > "$T/out.json" 2> "$T/err" || fail "$f refused: $(cat "$T/err")"
    ok "cdh --check $(basename "$f")"
done
"$CDH" -c "$G/confidential-data-hub/example.config.toml" --check > "$T/out.json" 2>/dev/null
python3 - "$T/out.json" <<'PY' || fail "cdh example: effective values wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["kbc"]["name"] == "cc_kbc" and d["kbc"]["url"] == "http://example.io:8080"
assert len(d["credentials"]) == 2
assert d["image"]["max_concurrent_layer_downloads_per_image"] == 3
assert d["image"]["image_security_policy_uri"] == "kbs:///default/security-policy/test"
PY
ok "upstream's example aa.toml and cdh.toml give the expected effective configuration"

# unknown keys: warned by dotted path, still accepted
printf '[token_configs.kbs]\nurl = "http://k"\nurll = "x"\n[eventlog_config]\ninit_prc = 3\n' > "$T/aa.toml"
"$AA" -c "$T/aa.toml" --check > /dev/null 2> "$T/err" || fail "aa: unknown keys refused"
grep -q "unknown key 'token_configs.kbs.urll'" "$T/err" || fail "aa: typo not warned: $(cat "$T/err")"
grep -q "unknown key 'eventlog_config.init_prc'" "$T/err" || fail "aa: typo not warned"
printf 'socket = "unix:///tmp/x"\nsockett = 1\n[kbc]\nname = "cc_kbc"\nurl = "http://k"\ncert = "x"\n[image]\nmax_concurent = 2\n' > "$T/cdh.toml"
"$CDH" -c "$T/cdh.toml" --check > /dev/null 2> "$T/err" || fail "cdh: unknown keys refused"
for k in sockett kbc.cert image.max_concurent; do
    grep -q "unknown key '$k'" "$T/err" || fail "cdh: $k not warned: $(cat "$T/err")"
done
ok "unknown aa.toml / cdh.toml keys are warned about by dotted path"

# twins: refused by name
printf '[eventlog_config]\ninit_pcr = "17"\n' > "$T/aa-bad.toml"
if "$AA" -c "$T/aa-bad.toml" --check > /dev/null 2> "$T/err"; then fail "aa: wrong type accepted"; fi
grep -q "eventlog_config.init_pcr" "$T/err" || fail "aa: wrong type not named: $(cat "$T/err")"
printf '[kbc]\nname = "sev_kbc"\nurl = "http://k"\n' > "$T/cdh-bad.toml"
if "$CDH" -c "$T/cdh-bad.toml" --check > /dev/null 2> "$T/err"; then fail "cdh: unknown kbc accepted"; fi
grep -q "sev_kbc" "$T/err" || fail "cdh: kbc not named: $(cat "$T/err")"
printf 'skip_sealed_secret_verification = true\n' > "$T/cdh-skip.toml"
if "$CDH" -c "$T/cdh-skip.toml" --check > /dev/null 2> "$T/err"; then fail "cdh: skip switch accepted"; fi
grep -q "skip_sealed_secret_verification" "$T/err" || fail "cdh: switch not named"
ok "a wrong type, an unsupported KBC and the unsafe upstream switch are refused by name"
