#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `cloister policy eval/test/bench`: results checked with python3's JSON parser, exit statuses,
# Kata case files with state ops (a tamper twin that must fail), and the benchmark figures.
. "$(dirname "$0")/lib.sh"

P="$CLI_BIN policy"

# ---- eval ----
cat > "$T/p.rego" <<'EOF'
package app

default allow := false

allow if input.user == data.admins[_]

names contains n if some n in data.admins
EOF
echo '{"admins": ["alice", "bob"]}' > "$T/d.json"
echo '{"user": "alice"}' > "$T/in.json"
$P eval -d "$T/p.rego" -d "$T/d.json" -i "$T/in.json" 'data.app.allow; x := count(data.app.names)' > "$T/out.json" ||
    fail "eval failed"
python3 - "$T/out.json" <<'EOF' || fail "eval result shape"
import json, sys
r = json.load(open(sys.argv[1]))["result"]
assert len(r) == 1, r
ex = r[0]["expressions"]
assert ex[0]["value"] is True and ex[0]["text"] == "data.app.allow", ex
assert ex[0]["location"] == {"row": 1, "col": 1}, ex
assert ex[1]["text"] == "x := count(data.app.names)", ex
assert r[0]["bindings"] == {"x": 2}, r
EOF
ok "eval prints opa eval's result set"

echo '{"user": "mallory"}' > "$T/in2.json"
v=$($P eval -f values -d "$T/p.rego" -d "$T/d.json" -i "$T/in2.json" data.app.allow)
[ "$v" = false ] || fail "allow for mallory: $v"
ok "eval -f values, deny"

out=$($P eval -d "$T/p.rego" data.app.nothing)
[ "$out" = "{}" ] || fail "undefined should print {}: $out"
ok "undefined prints {}"

rc=0
$P eval -d "$T/p.rego" 'x := ' > "$T/err.json" || rc=$?
[ $rc = 3 ] || fail "parse error exit status $rc"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"][0]; assert e["code"]=="rego_parse_error", e' \
    "$T/err.json" || fail "parse error shape"
ok "parse error: exit 3, errors[0].code rego_parse_error"

printf 'package old\np[x] { x := input.xs[_] }\n' > "$T/v0.rego"
echo '{"xs": [3, 1, 3]}' > "$T/xs.json"
v=$($P eval --v0 -f values -d "$T/v0.rego" -i "$T/xs.json" data.old.p | tr -d ' \n')
[ "$v" = "[1,3]" ] || fail "v0 partial set: $v"
rc=0
$P eval -d "$T/v0.rego" data.old.p > /dev/null || rc=$?
[ $rc != 0 ] || fail "v0 syntax accepted without --v0"
ok "--v0 parses Rego v0, v1 refuses it"

# ---- test: cases with state ops ----
mkdir -p "$T/kata"
cat > "$T/kata/policy.rego" <<'EOF'
package agent_policy

default CreateContainerRequest := {"allowed": false}
CreateContainerRequest := {"allowed": true, "ops": [{"op": "add", "path": "/pstate/count", "value": n}]} if {
	n := object.get(data.pstate, "count", 0) + 1
	n <= 2
}

default ExecProcessRequest := false
ExecProcessRequest if data.pstate.count == 2
EOF
cat > "$T/kata/cases.jsonl" <<'EOF'
{"ep": "ExecProcessRequest", "input": {}, "want": false}
{"ep": "CreateContainerRequest", "input": {}, "want": true}
{"ep": "CreateContainerRequest", "input": {}, "want": true}
{"ep": "ExecProcessRequest", "input": {}, "want": true}
{"ep": "CreateContainerRequest", "input": {}, "want": false}
EOF
$P test --v1 "$T/kata" > "$T/test.out" || { cat "$T/test.out"; fail "policy test"; }
grep -q "TOTAL *pass *5 fail *0" "$T/test.out" || fail "policy test counts: $(cat "$T/test.out")"
ok "test: decisions in order with state ops applied"

sed 's/"want": false}$/"want": true}/' "$T/kata/cases.jsonl" > "$T/kata/bad.jsonl"
rc=0
$P test --v1 -v --policy "$T/kata/policy.rego" "$T/kata/bad.jsonl" > "$T/bad.out" || rc=$?
[ $rc = 1 ] || fail "a wrong expectation must fail (status $rc)"
grep -q "FAIL kata case 1 ExecProcessRequest: want allow, got deny" "$T/bad.out" || fail "failure text: $(cat "$T/bad.out")"
ok "test: a tampered expectation fails with the case named"

echo '{"ep": "NoSuchRequest", "input": {}, "want": false}' > "$T/kata/undef.jsonl"
rc=0
$P test --v1 -v --policy "$T/kata/policy.rego" "$T/kata/undef.jsonl" > "$T/undef.out" || rc=$?
[ $rc = 1 ] && grep -q "undefined decision" "$T/undef.out" || fail "undefined decision must be an error"
ok "test: an undefined decision is an error, not a deny"

VEC=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-}}
if [ -n "$VEC" ] && [ -d "$VEC/kata-policy/regorus-kata" ]; then
    $P test "$VEC/kata-policy/regorus-kata" > "$T/rk.out" || { tail "$T/rk.out"; fail "regorus-kata cases"; }
    ok "test: every regorus-kata decision ($(grep TOTAL "$T/rk.out" | tr -s ' '))"
fi

# ---- bench ----
$P bench --count 200 -d "$T/p.rego" -d "$T/d.json" -i "$T/in.json" data.app.allow > "$T/bench.out" || fail "bench"
for k in samples ns/op B/op allocs/op histogram_timer_rego_query_eval_ns_median histogram_timer_rego_query_eval_ns_99%; do
    grep -q "| $k " "$T/bench.out" || fail "bench misses $k"
done
$P bench -f json --clock cpu --count 100 -d "$T/p.rego" -d "$T/d.json" -i "$T/in.json" data.app.allow > "$T/bench.json"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["samples"]==100 and b["ns/op"]>0, b' "$T/bench.json" ||
    fail "bench json"
$P bench --kata --v1 -f json --count 20 "$T/kata" > "$T/kb.json" || fail "bench --kata"
python3 - "$T/kb.json" <<'EOF' || fail "bench --kata json"
import json, sys
b = json.load(open(sys.argv[1]))
reqs = {r["request"]: r for r in b["summary"]["requests"]}
assert reqs["CreateContainerRequest"]["samples"] == 60 and reqs["ExecProcessRequest"]["samples"] == 40, reqs
assert b["policies"][0]["load_ns_median"] > 0 and b["policies"][0]["engine_bytes"] > 0, b
EOF
ok "bench: opa bench figures, json, --kata per request kind"

for c in eval test bench; do
    $P $c --help | grep -q "Usage: cloister policy $c" || fail "$c --help"
done
rc=0
$P nosuch 2> /dev/null || rc=$?
[ $rc = 2 ] || fail "unknown command status $rc"
ok "--help for each command; unknown command is a usage error"
