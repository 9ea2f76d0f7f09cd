# SPDX-License-Identifier: Apache-2.0
# swtpm for the integration tests, sourced by lib.sh and shim-lib.sh (which define T, PIDS and
# fail). Not run.
# ---- swtpm: a TPM 2.0 simulator on two adjacent free loopback ports (the swtpm TCTI finds
# the control channel at the server port + 1) ----
swtpm_ports() {
    python3 -c '
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError: pass
    finally: a.close(); b.close()
'
}
# start_swtpm NAME [PORT]: state in $T/NAME, log $T/NAME.log; waits until it listens and sets
# SWTPM_<NAME> (pid, also in PIDS), SP_<NAME> (server port) and TCTI_<NAME>.
start_swtpm() {
    mkdir -p "$T/$1"
    sp=${2:-$(swtpm_ports)}
    swtpm socket --tpm2 --tpmstate dir="$T/$1" --server type=tcp,port="$sp",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((sp + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear \
        >>"$T/$1.log" 2>&1 &
    eval "SWTPM_$1=$!"
    PIDS="$PIDS $!"
    eval "SP_$1=$sp"
    eval "TCTI_$1=swtpm:host=127.0.0.1,port=$sp"
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $sp), 1)" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "swtpm $1 did not start: $(tail -3 "$T/$1.log")"; sleep 0.1
    done
}
