#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sd_notify readiness (src/base/sdnotify.c) with a real receiver playing systemd
# (notify_listen.py): cloister-kbs sends READY=1 only once its port answers (the receiver
# fetches /healthz the moment READY=1 arrives), RELOADING=1 then READY=1 around SIGHUP,
# STOPPING=1 on SIGTERM; abstract (@name) and path sockets. cloister-cdh does the same.
# Twins: a store that cannot be opened means no READY=1 and a non-zero exit; a NOTIFY_SOCKET
# that is not a path or @name is reported and the daemon keeps serving.
. "$(dirname "$0")/lib.sh"
LISTEN=$SRC/tests/integration/notify_listen.py

listen() { # listen SOCKET LOG [PROBE_URL]: starts the receiver, sets LISTEN_PID
    python3 "$LISTEN" "$@" &
    LISTEN_PID=$!
    PIDS="$PIDS $LISTEN_PID"
    i=0
    until [ -e "$2.bound" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "notify receiver did not bind $1"
        sleep 0.05
    done
}
wait_line() { # wait_line LOG PATTERN N WHAT: waits until the log has N lines matching PATTERN
    i=0
    while :; do
        n=$(grep -c -- "$2" "$1" 2>/dev/null) || true
        [ "${n:-0}" -lt "$3" ] || break
        i=$((i + 1)); [ $i -lt 200 ] || fail "$4: no '$2' (log: $(tr '\n' ' ' <"$1" 2>/dev/null))"
        sleep 0.05
    done
}

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
URL="http://127.0.0.1:$PORT"
NS="@cloister-it-$$-kbs"
listen "$NS" "$T/n1.log" "$URL/healthz"
NOTIFY_SOCKET=$NS "$KBS_BIN" -c "$T/kbs.toml" >>"$T/kbs.log" 2>&1 &
KBS_PID=$!
PIDS="$PIDS $KBS_PID"
wait_line "$T/n1.log" "READY=1" 1 "cloister-kbs start"
[ "$(sed -n 1p "$T/n1.log")" = "READY=1|STATUS=serving probe=ok" ] ||
    fail "first datagram: '$(sed -n 1p "$T/n1.log")' (wanted READY=1 with the port answering)"
ok "cloister-kbs: READY=1 on an abstract socket, /healthz answered when it arrived"

kill -HUP "$KBS_PID"
wait_line "$T/n1.log" "READY=1" 2 "after SIGHUP"
sed -n 2p "$T/n1.log" | grep -q '^RELOADING=1|MONOTONIC_USEC=[0-9][0-9]*$' ||
    fail "SIGHUP: second datagram '$(sed -n 2p "$T/n1.log")', wanted RELOADING=1"
[ "$(sed -n 3p "$T/n1.log")" = "READY=1 probe=ok" ] || fail "SIGHUP: third datagram '$(sed -n 3p "$T/n1.log")'"
ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1"

kill -TERM "$KBS_PID"
rc=0; wait "$KBS_PID" || rc=$?
[ $rc = 0 ] || fail "cloister-kbs exited $rc on SIGTERM"
[ "$(sed -n 4p "$T/n1.log")" = "STOPPING=1" ] || fail "SIGTERM: '$(sed -n 4p "$T/n1.log")', wanted STOPPING=1"
ok "SIGTERM: STOPPING=1, exit 0"

# twin: the store cannot be opened (dir_path is a regular file): no READY=1, exit non-zero
: >"$T/not-a-folder"
sed "s#^dir_path = .*#dir_path = \"$T/not-a-folder\"#" "$T/kbs.toml" >"$T/bad.toml"
listen "$T/n2.sock" "$T/n2.log"
rc=0
NOTIFY_SOCKET=$T/n2.sock "$KBS_BIN" -c "$T/bad.toml" >"$T/bad.log" 2>&1 || rc=$?
[ $rc != 0 ] || fail "cloister-kbs with a broken store exited 0"
sleep 0.2
! grep -q "READY=1" "$T/n2.log" 2>/dev/null || fail "READY=1 sent with a broken store: $(cat "$T/n2.log")"
ok "a broken store: exit $rc, no READY=1 ($(head -c 160 "$T/bad.log"))"

# twin: a malformed NOTIFY_SOCKET is reported, the daemon still serves
PORT=$(free_port)
write_config "$T/kbs3.toml" "$PORT"
URL="http://127.0.0.1:$PORT"
NOTIFY_SOCKET=relative/sock "$KBS_BIN" -c "$T/kbs3.toml" >"$T/kbs3.log" 2>&1 &
KBS_PID=$!
PIDS="$PIDS $KBS_PID"
i=0
until curl -fsS "$URL/healthz" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "cloister-kbs did not come up with a bad NOTIFY_SOCKET"
    sleep 0.1
done
grep -q "NOTIFY_SOCKET 'relative/sock' is not an absolute path" "$T/kbs3.log" ||
    fail "bad NOTIFY_SOCKET not reported: $(cat "$T/kbs3.log")"
stop_kbs
ok "a NOTIFY_SOCKET that is not a path or @name is named in the log; the KBS serves anyway"

# cloister-cdh (no AA needed to start): READY=1 after its REST bridge answers, path socket
CDH_BIN=$BUILD/src/cmd/cloister-cdh
REST_PORT=$(free_port)
cat >"$T/cdh.toml" <<CFG
socket = "unix://$T/cdh.sock"
[rest]
address = "127.0.0.1:$REST_PORT"
CFG
listen "$T/n4.sock" "$T/n4.log" "http://127.0.0.1:$REST_PORT/info"
NOTIFY_SOCKET=$T/n4.sock "$CDH_BIN" -c "$T/cdh.toml" >"$T/cdh.log" 2>&1 &
CDH_PID=$!
PIDS="$PIDS $CDH_PID"
wait_line "$T/n4.log" "READY=1" 1 "cloister-cdh start"
[ "$(sed -n 1p "$T/n4.log")" = "READY=1|STATUS=serving probe=ok" ] ||
    fail "cloister-cdh first datagram: '$(sed -n 1p "$T/n4.log")' ($(tail -3 "$T/cdh.log"))"
kill -TERM "$CDH_PID"
rc=0; wait "$CDH_PID" || rc=$?
[ $rc = 0 ] || fail "cloister-cdh exited $rc on SIGTERM: $(tail -5 "$T/cdh.log")"
[ "$(sed -n 2p "$T/n4.log")" = "STOPPING=1" ] || fail "cloister-cdh SIGTERM: '$(sed -n 2p "$T/n4.log")'"
ok "cloister-cdh: READY=1 once its REST bridge answers (path socket), STOPPING=1 on SIGTERM"
