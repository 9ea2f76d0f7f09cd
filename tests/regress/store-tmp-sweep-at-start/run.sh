#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Temporary files that an interrupted write left in the LocalFs store are gone once
# cloister-kbs has started, however young they are; keys stay, and a temporary file that
# another process is writing (it holds a shared flock) is left alone.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
mkdir -p "$T/store/kbs" "$T/resources/repository"
chmod 700 "$T/store" "$T/store/kbs" "$T/resources" "$T/resources/repository"
printf 'half a write' >"$T/store/kbs/#tmp.000000000000000000000001"
printf 'half a write' >"$T/resources/repository/#tmp.000000000000000000000002"
printf 'a key' >"$T/resources/repository/repo\x2Fkey\x2Fkept"
# a writer at work in another process: it holds its temporary file under a shared lock
: >"$T/resources/repository/#tmp.000000000000000000000003"
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_SH); open(sys.argv[2], "w").close(); time.sleep(60)' \
    "$T/resources/repository/#tmp.000000000000000000000003" "$T/locked" &
HOLDER=$!
PIDS="$PIDS $HOLDER"
i=0
until [ -e "$T/locked" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the lock holder did not start"; sleep 0.1
done
start_kbs "$T/kbs.toml"
[ ! -e "$T/store/kbs/#tmp.000000000000000000000001" ] || fail "a fresh leftover stayed in the store"
[ ! -e "$T/resources/repository/#tmp.000000000000000000000002" ] ||
    fail "a fresh leftover stayed in the resource store"
[ -e "$T/resources/repository/#tmp.000000000000000000000003" ] ||
    fail "a temporary file held by a writer was removed"
[ -e "$T/resources/repository/repo\x2Fkey\x2Fkept" ] || fail "a key was removed"
grep -q 'removed temporary file #tmp.000000000000000000000001' "$T/kbs.log" || fail "sweep not logged"
ok "leftovers swept at start-up, the held one and the key kept"
# the store still works
st=$(http POST /kbs/v0/resource/repo/key/new -H "Authorization: Bearer $(admin_token)" --data-binary x)
expect_status 200 "$st" "a write after the sweep"
ls "$T/resources/repository" | grep -v '^#tmp.000000000000000000000003$' | grep -q '^#tmp' &&
    fail "a write left a temporary file"
kill "$HOLDER" 2>/dev/null || true
echo PASS
