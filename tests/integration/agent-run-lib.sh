# SPDX-License-Identifier: Apache-2.0
# Shared by tests/integration/agent-run.sh and bench/agent_create.sh (sourced, with
# AGENT_LIB_DIR set to this folder): re-runs the caller in its own namespaces
# (unshare --mount --net --uts --ipc --pid --fork), starts a loopback docker-registry holding a
# busybox image (rootfs from /bin/busybox of busybox-static), cloister-cdh with an [image]
# policy that accepts only $REG/test, writes agent policies, and defines the agent-ctl helpers.

if [ -z "${AGENT_RUN_INNER:-}" ]; then
    for c in unshare runc docker-registry skopeo umoci jq curl ip htpasswd; do
        command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed"; exit 77; }
    done
    [ "$(id -u)" = 0 ] || { echo "SKIP: runc and the namespaces need root"; exit 77; }
    [ -x /bin/busybox ] || { echo "SKIP: /bin/busybox (busybox-static) is missing"; exit 77; }
    AGENT_RUN_INNER=1 exec unshare --mount --net --uts --ipc --pid --fork --mount-proc sh "$0" "$@"
fi

ip link set lo up
. "$AGENT_LIB_DIR/image-lib.sh"
AGENT=$BUILD/src/cmd/cloister-agent
CDH=$BUILD/src/cmd/cloister-cdh
[ -x "$AGENT" ] || fail "cloister-agent not built"
[ -x "$CDH" ] || fail "cloister-cdh not built"
RUN=$T/run
SHARED=$RUN/shared/containers
# runc's cgroups go under a parent of this test's own (cgroupfs manager, v1 or v2)
CLOISTER_AGENT_CGROUP_PARENT=cloister-test-$$
export CLOISTER_AGENT_CGROUP_PARENT
cg_cleanup() {
    for d in /sys/fs/cgroup/*/"$CLOISTER_AGENT_CGROUP_PARENT" /sys/fs/cgroup/"$CLOISTER_AGENT_CGROUP_PARENT"; do
        [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
}

# ---- a busybox image in a loopback registry ----
start_registry reg
mkdir -p "$T/rootfs/bin" "$T/rootfs/etc" "$T/rootfs/tmp" "$T/rootfs/proc" "$T/rootfs/dev" "$T/rootfs/sys"
cp /bin/busybox "$T/rootfs/bin/busybox"
for a in sh echo cat sleep ls hostname tty stty id wc head tr true; do ln -s busybox "$T/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$T/rootfs/etc/passwd"
tar -C "$T/rootfs" -cf "$T/busybox.tar" .
umoci init --layout "$T/oci"
umoci new --image "$T/oci:bb"
umoci raw add-layer --image "$T/oci:bb" "$T/busybox.tar"
umoci config --image "$T/oci:bb" --config.cmd /bin/sh >/dev/null
push "oci:$T/oci:bb" "$REG/test/busybox:1"
push "oci:$T/oci:bb" "$REG/test/busybox:forbidden"
push "oci:$T/oci:bb" "$REG/other/busybox:1"
IMAGE=$REG/test/busybox:1
# a second registry that wants Basic credentials (htpasswd), given to the hub in a
# containers-auth.json it reads at every pull
htpasswd -Bbn alice s3cret > "$T/htpasswd"
MAIN_REG=$REG
MAIN_REG_PID=$REG_PID
start_registry authreg "auth: {htpasswd: {realm: agent-run, path: $T/htpasswd}}"
AREG=$REG
REG=$MAIN_REG
REG_PID=$MAIN_REG_PID
push "oci:$T/oci:bb" "$AREG/test/busybox:1" --dest-creds alice:s3cret
printf '{"auths":{"%s":{"auth":"%s"}}}' "$AREG" "$(printf alice:s3cret | base64)" > "$T/auth.json"

# ---- the same image with its layer encrypted for the hub's key provider ----
# AES-256-CTR + HMAC-SHA256 (ocicrypt's cipher) with openssl; the layer options wrapped as the
# hub's annotation packet (`cloister secret wrap-key`) under a KEK the hub gets from its
# offline_fs_kbc resources (kek1); a twin wrapped under a KEK the hub does not have (kek2).
head -c 32 /dev/urandom > "$T/kek1"
head -c 32 /dev/urandom > "$T/kek2"
printf '{"default/image-kek/1": "%s"}' "$(base64 -w0 < "$T/kek1")" > "$T/offline.json"
python3 - "$T" "$CLI" <<'PY'
import base64, hashlib, hmac, json, os, subprocess, sys
T, CLI = sys.argv[1], sys.argv[2]
lay = f"{T}/oci"
idx = json.load(open(f"{lay}/index.json"))
desc = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "bb"][0]
man = json.load(open(f"{lay}/blobs/sha256/{desc['digest'][7:]}"))
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h
def encrypt(layer, kid, kek):
    plain = open(f"{lay}/blobs/sha256/{layer['digest'][7:]}", "rb").read()
    key, nonce = os.urandom(32), os.urandom(16)
    ct = subprocess.run(["openssl", "enc", "-aes-256-ctr", "-K", key.hex(), "-iv", nonce.hex()], input=plain,
                        capture_output=True, check=True).stdout
    mac = hmac.new(key, ct, hashlib.sha256).digest()
    priv = {"symkey": base64.b64encode(key).decode(), "digest": layer["digest"],
            "cipheroptions": {"nonce": base64.b64encode(nonce).decode()}}
    pub = {"cipher": "AES_256_CTR_HMAC_SHA256", "hmac": base64.b64encode(mac).decode(), "cipheroptions": {}}
    open(f"{T}/plbco.json", "w").write(json.dumps(priv))
    ann = subprocess.run([CLI, "secret", "wrap-key", "--kid", kid, "--kek-file", kek, "--file", f"{T}/plbco.json"],
                         capture_output=True, check=True, text=True).stdout.strip()
    return {"mediaType": layer["mediaType"] + "+encrypted", "digest": put(ct), "size": len(ct),
            "annotations": {"org.opencontainers.image.enc.keys.provider.attestation-agent": ann,
                            "org.opencontainers.image.enc.pubopts": base64.b64encode(json.dumps(pub).encode()).decode()}}
for tag, kid, kek in (("enc", "kbs:///default/image-kek/1", f"{T}/kek1"), ("enc-other", "kbs:///default/image-kek/2", f"{T}/kek2")):
    m = dict(man)
    m["layers"] = [encrypt(l, kid, kek) for l in man["layers"]]
    b = json.dumps(m).encode()
    idx["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(b), "size": len(b),
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(idx, open(f"{lay}/index.json", "w"))
PY
push "oci:$T/oci:enc" "$REG/test/busybox:enc"
push "oci:$T/oci:enc-other" "$REG/test/busybox:enc-other"
curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/test/busybox/manifests/enc" \
    | grep -q 'tar+gzip+encrypted' || fail "the enc image has no encrypted layer"

# ---- cloister-cdh: accept only $REG/test, the registry over plain HTTP ----
cat > "$T/cdh.toml" <<C
socket = "unix://$T/cdh.sock"
[kbc]
name = "offline_fs_kbc"
offline_files = ["$T/offline.json"]
[image]
work_dir = "$T/image"
image_security_policy = '''{"default": [{"type": "reject"}], "transports": {"docker": {"$REG/test": [{"type": "insecureAcceptAnything"}], "$AREG/test": [{"type": "insecureAcceptAnything"}]}}}'''
authenticated_registry_credentials_uri = "file://$T/auth.json"
[image.registry_config]
[[image.registry_config.registry]]
location = "$REG"
insecure = true
[[image.registry_config.registry]]
location = "$AREG"
insecure = true
C
"$CDH" -c "$T/cdh.toml" --no-rest > "$T/cdh.log" 2>&1 &
CDH_PID=$!
PIDS="$PIDS $CDH_PID"

# ---- agent policies: all allowed; and one that forbids an image tag and a command ----
ENTRIES="CreateSandboxRequest DestroySandboxRequest StartContainerRequest RemoveContainerRequest
ExecProcessRequest SignalProcessRequest WaitProcessRequest WriteStreamRequest ReadStreamRequest
CloseStdinRequest TtyWinResizeRequest StatsContainerRequest CopyFileRequest GetOOMEventRequest
GuestDetailsRequest UpdateContainerRequest PauseContainerRequest ResumeContainerRequest UpdateInterfaceRequest UpdateRoutesRequest ListInterfacesRequest ListRoutesRequest
SetPolicyRequest"
policy() { # policy FILE CREATE_RULE_BODY
    { echo "package agent_policy"; echo
      for e in $ENTRIES; do echo "default $e := true"; done
      echo "default CreateContainerRequest := false"
      printf '%s\n' "$2"; } > "$1"
}
policy "$T/allow.rego" 'CreateContainerRequest := true'
policy "$T/deny.rego" 'CreateContainerRequest if {
    not forbidden
}
forbidden if {
    some s in input.storages
    endswith(s.source, ":forbidden")
}
forbidden if {
    some a in input.OCI.Process.Args
    contains(a, "forbidden")
}'

start_agent() { # start_agent POLICY
    "$AGENT" --listen "unix://$T/agent.sock" --policy "$1" --run-dir "$RUN" --cdh "unix://$T/cdh.sock" \
        >> "$T/agent.log" 2>&1 &
    AGENT_PID=$!
    PIDS="$PIDS $AGENT_PID"
    i=0
    until [ -S "$T/agent.sock" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || { ls -la "$T"; fail "cloister-agent did not start"; }; sleep 0.1
    done
}
stop_agent() {
    kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
    rm -f "$T/agent.sock"
}

# ctl CALL JSON: sets RC, output in $T/ctl.out, errors in $T/ctl.err
ctl() {
    set +e
    "$CLI" agent-ctl --addr "unix://$T/agent.sock" --timeout 120000 "$1" "$2" > "$T/ctl.out" 2> "$T/ctl.err"
    RC=$?
    set -e
    if grep -q 'Sanitizer\|runtime error' "$T/ctl.err"; then cat "$T/ctl.err"; fail "agent-ctl $1: sanitizer report"; fi
}
# sanitizers_clean: stops cloister-cdh and checks the daemons' logs for sanitizer reports
sanitizers_clean() {
    kill "$CDH_PID"; wait "$CDH_PID" 2>/dev/null || true
    if grep -q 'Sanitizer\|runtime error' "$T/agent.log" "$T/cdh.log"; then
        grep -A30 'Sanitizer\|runtime error' "$T/agent.log" "$T/cdh.log" | head -60; fail "sanitizer report in a daemon log"
    fi
}
must() { ctl "$1" "$2"; [ "$RC" = 0 ] || { cat "$T/ctl.err"; fail "$1: exit $RC"; }; }
expect() { # expect RC CALL JSON WHAT
    ctl "$2" "$3"
    [ "$RC" = "$1" ] || { cat "$T/ctl.out" "$T/ctl.err"; fail "$4: exit $RC, wanted $1"; }
    ok "$4 => exit $RC ($(head -c 160 "$T/ctl.err"))"
}
# read_all CID EXEC STREAM: ReadStdout/ReadStderr until end of stream → $T/stream
read_all() {
    : > "$T/stream"
    n=0
    while :; do
        ctl "$3" "{\"container_id\":\"$1\",\"exec_id\":\"$2\",\"len\":4096}"
        [ "$RC" = 0 ] || break
        jq -j '.data | implode' "$T/ctl.out" >> "$T/stream"
        n=$((n + 1)); [ $n -lt 1000 ] || fail "$3 of $1 never ends"
    done
    grep -q 'end of stream' "$T/ctl.err" || { cat "$T/ctl.err"; fail "$3 of $1 ended with an error"; }
}
bytes() { printf '%s' "$1" | od -An -tu1 | tr -s ' \n' ',' | sed 's/^,//; s/,$//'; }

# container_json CID ARGS_JSON [TERMINAL] [IMAGE]
container_json() {
    cat <<J
{"container_id": "$1", "exec_id": "$1",
 "storages": [{"driver": "image_guest_pull", "source": "${4:-$IMAGE}", "fstype": "overlay",
               "mount_point": "$RUN/$1/rootfs", "driver_options": ["image_guest_pull={}"]}],
 "OCI": {"Version": "1.0.2", "Hostname": "$1",
   "Root": {"Path": "$RUN/$1/rootfs"},
   "Process": {"Terminal": ${3:-false}, "Args": $2, "Env": ["PATH=/bin"], "Cwd": "/",
               "ApparmorProfile": "cri-containerd.apparmor.d", "SelinuxLabel": "system_u:system_r:container_t:s0",
               "User": {"UID": 0, "GID": 0},
               "Rlimits": [{"Type": "RLIMIT_NOFILE", "Hard": 1048576, "Soft": 1048576}]},
   "Mounts": [{"destination": "/proc", "source": "proc", "type_": "proc"},
              {"destination": "/dev", "source": "tmpfs", "type_": "tmpfs", "options": ["nosuid", "mode=755"]},
              {"destination": "/dev/pts", "source": "devpts", "type_": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}],
   "Linux": {"Namespaces": [{"Type": "pid"}, {"Type": "mount"}, {"Type": "ipc"}, {"Type": "uts"},
                            {"Type": "network", "Path": "/proc/1/ns/net"}],
             "MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": ["/proc/sys"]}}}
J
}

i=0
until [ -S "$T/cdh.sock" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "cloister-cdh did not start"; sleep 0.1; done