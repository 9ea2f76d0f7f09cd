#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The guest daemons' configuration files as upstream writes them: every aa.toml and cdh.toml
# example of guest-components goes through `cloister-aa --check` / `cloister-cdh --check`
# (exit 0, the effective configuration printed as JSON; config1/config2, whose cert = "cert"
# is a parser fixture and not a certificate, are refused by --check naming the key). Unknown
# keys are refused by dotted path and file:line (exit 2), as the KBS does; twins: a known key
# of the wrong type, an unsupported KBC and the unsafe upstream switch are refused by name.
. "$(dirname "$0")/lib.sh"

G=${CLOISTER_VECTORS:-/work/shared/vectors}/guest-components
[ -d "$G/attestation-agent" ] || skip "guest-components vectors not found at $G"
AA=$BUILD/src/cmd/cloister-aa
CDH=$BUILD/src/cmd/cloister-cdh

for f in "$G"/attestation-agent/attestation-agent/config.example.toml "$G"/attestation-agent/attestation-agent/test/*.toml; do
    case $f in
    */config1.toml | */config2.toml)
        if "$AA" -c "$f" --check > /dev/null 2> "$T/err"; then fail "$f: cert = \"cert\" passed --check"; fi
        grep -q "'token_configs.kbs.cert': PEM" "$T/err" || fail "$f: bad cert not named: $(cat "$T/err")"
        ok "aa --check $(basename "$f") refuses its placeholder certificate by name"
        continue ;;
    esac
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

# unknown keys: refused by dotted path and file:line, exit 2
printf '[token_configs.kbs]\nurl = "http://k"\nurll = "x"\n[eventlog_config]\ninit_prc = 3\n' > "$T/aa.toml"
rc=0; "$AA" -c "$T/aa.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ "$rc" = 2 ] || fail "aa: unknown keys: exit $rc, wanted 2"
grep -q "aa.toml:3: 'token_configs.kbs.urll' is not a key" "$T/err" || fail "aa: typo not refused: $(cat "$T/err")"
grep -q "aa.toml:5: 'eventlog_config.init_prc' is not a key" "$T/err" || fail "aa: typo not refused"
grep -q "2 keys refused" "$T/err" || fail "aa: refusals not counted"
printf 'socket = "unix:///tmp/x"\nsockett = 1\n[kbc]\nname = "cc_kbc"\nurl = "http://k"\ncert = "x"\n[image]\nmax_concurent = 2\n' > "$T/cdh.toml"
rc=0; "$CDH" -c "$T/cdh.toml" --check > /dev/null 2> "$T/err" || rc=$?
[ "$rc" = 2 ] || fail "cdh: unknown keys: exit $rc, wanted 2"
for k in 2:sockett 6:kbc.cert 8:image.max_concurent; do
    grep -q "cdh.toml:${k%%:*}: '${k#*:}' is not a key" "$T/err" || fail "cdh: $k not refused: $(cat "$T/err")"
done
# the daemon itself refuses too (not only --check)
rc=0; timeout 10 "$CDH" -c "$T/cdh.toml" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" = 2 ] || fail "cdh daemon: unknown keys: exit $rc, wanted 2"
ok "unknown aa.toml / cdh.toml keys are refused by dotted path and file:line (exit 2)"

# --check opens what the configuration names: a missing offline file, a certificate that is not one
printf '[kbc]\nname = "offline_fs_kbc"\noffline_files = ["%s/absent.json"]\n' "$T" > "$T/cdh-off.toml"
if "$CDH" -c "$T/cdh-off.toml" --check > /dev/null 2> "$T/err"; then fail "cdh: missing offline file passed --check"; fi
grep -q "kbc.offline_files\[0\]" "$T/err" || fail "cdh: missing file not named: $(cat "$T/err")"
printf '[image]\nextra_root_certificates = ["-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n"]\n' > "$T/cdh-pem.toml"
if "$CDH" -c "$T/cdh-pem.toml" --check > /dev/null 2> "$T/err"; then fail "cdh: broken certificate passed --check"; fi
grep -q "image.extra_root_certificates\[0\]" "$T/err" || fail "cdh: broken certificate not named: $(cat "$T/err")"
echo 'not json' > "$T/present.json"
printf '[kbc]\nname = "offline_fs_kbc"\noffline_files = ["%s/present.json"]\n' "$T" > "$T/cdh-ok.toml"
if "$CDH" -c "$T/cdh-ok.toml" --check > /dev/null 2> "$T/err"; then fail "cdh: offline file that is not JSON passed --check"; fi
grep -q "kbc.offline_files\[0\]' .* is not a JSON object" "$T/err" || fail "cdh: bad offline file not named: $(cat "$T/err")"
echo '{}' > "$T/present.json"
printf '[kbc]\nname = "offline_fs_kbc"\noffline_files = ["%s/present.json"]\n' "$T" > "$T/cdh-ok.toml"
"$CDH" -c "$T/cdh-ok.toml" --check > /dev/null 2> "$T/err" || fail "cdh: present offline file refused: $(cat "$T/err")"
ok "--check of aa/cdh opens the files and parses the certificates the configuration names"

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
