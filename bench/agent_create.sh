#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# CreateContainer end to end: cloister-agent (runc) and cloister-cdh (guest pull from a
# loopback docker-registry, overlay rootfs) in namespaces of their own, every call made with
# `cloister agent-ctl` over ttrpc (so each figure includes one agent-ctl process start and
# connection). The first CreateContainer pulls the busybox image (cold: layer downloaded and
# unpacked); the next N find the layer in the store (warm: manifest, config and policy
# checked again, overlay mounted). Also timed: StartContainer, WaitProcess of /bin/true and
# RemoveContainer. Prints median / p90 / max per call in ms.
# Usage: bench/agent_create.sh [BUILD] (BENCH_N, default 20). Needs root, runc, docker-registry,
# skopeo, umoci (as tests/integration/agent-run.sh).
set -eu
if [ -z "${AGENT_RUN_INNER:-}" ]; then
    CLOISTER_BUILD=$(cd "${1:-build}" && pwd)
    CLOISTER_SRC=$(cd "$(dirname "$0")/.." && pwd)
    export CLOISTER_BUILD CLOISTER_SRC
fi
AGENT_LIB_DIR=${CLOISTER_SRC:-$(cd "$(dirname "$0")/.." && pwd)}/tests/integration
. "$AGENT_LIB_DIR/agent-run-lib.sh"
N=${BENCH_N:-20}

start_agent "$T/allow.rego"
must CreateSandbox '{"hostname": "bench", "sandbox_id": "bench"}'
now() { date +%s%N; }
# timed CALL JSON → appends ms to $T/t.CALL
timed() {
    a=$(now)
    must "$1" "$2"
    b=$(now)
    echo $(( (b - a) / 1000 )) >> "$T/t.$3"
}
i=0
while [ $i -le "$N" ]; do
    container_json "b$i" '["/bin/true"]' > "$T/b.json"
    if [ $i = 0 ]; then timed CreateContainer "@$T/b.json" cold; else timed CreateContainer "@$T/b.json" create; fi
    timed StartContainer "{\"container_id\": \"b$i\"}" start
    timed WaitProcess "{\"container_id\": \"b$i\", \"exec_id\": \"\"}" wait
    timed RemoveContainer "{\"container_id\": \"b$i\"}" remove
    i=$((i + 1))
done
a=$(now)
must GetGuestDetails '{}'
b=$(now)
echo $(( (b - a) / 1000 )) > "$T/t.noop"

stats() { # stats FILE NAME
    sort -n "$1" | awk -v name="$2" '{ v[NR] = $1 } END {
        p50 = v[int((NR + 1) / 2)]; p90 = v[int(NR * 0.9 + 0.5) > 0 ? int(NR * 0.9 + 0.5) : 1];
        printf "%-34s n=%-3d median %7.1f ms  p90 %7.1f ms  max %7.1f ms\n", name, NR, p50 / 1000, p90 / 1000, v[NR] / 1000 }'
}
echo "agent_create: runc $(runc --version | head -1 | awk '{print $3}'), busybox image $(stat -c %s "$T/busybox.tar") bytes (1 layer), $(nproc) CPUs"
stats "$T/t.cold" "CreateContainer, cold pull"
stats "$T/t.create" "CreateContainer, layer in store"
stats "$T/t.start" "StartContainer"
stats "$T/t.wait" "WaitProcess (/bin/true)"
stats "$T/t.remove" "RemoveContainer"
stats "$T/t.noop" "GetGuestDetails (agent-ctl floor)"
grep 'pulled .* in [0-9]* ms' "$T/agent.log" | sed 's/.* in \([0-9]*\) ms.*/\1/' | awk '{ print $1 * 1000 }' > "$T/t.pull"
stats "$T/t.pull" "  of which cdh PullImage (agent log)"
cg_cleanup
