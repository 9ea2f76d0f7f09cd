#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Tampering and failures between the registry and the puller: a blob changed in the
# registry's storage, a truncated layer, a manifest whose layer digest names another blob, a
# registry that dies in the middle of a layer. Each must end with a clean error and no
# rootfs; after the registry is repaired (or back), the next pull works and resumes the
# interrupted download instead of starting it over.
. "$(dirname "$0")/image-lib.sh"

start_registry reg
make_image "$T/oci" t base top
push "oci:$T/oci:t" "$REG/demo/app:1"
reference_unpack "$REG/demo/app:1" "$T/ref"
blobfile() { echo "$T/reg.storage/docker/registry/v2/blobs/sha256/$(echo "$1" | cut -c1-2)/$1/data"; }
layer=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/demo/app/manifests/1" \
    | jq -r '.layers[-1].digest' | cut -d: -f2)
f=$(blobfile "$layer")
[ -f "$f" ] || fail "registry blob file not found: $f"
cp "$f" "$T/layer.orig"

# ---- a changed byte ----
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$f"
cloister_pull "$REG/demo/app:1" "$T/x-changed" --flat --policy "$T/accept.json"
expect_rc 4 "a blob changed in the registry"
grep -q 'digest' "$T/pull.err" || fail "the refusal does not name the digest"
[ ! -e "$T/x-changed" ] || fail "rootfs left after a digest mismatch"
ls "$T"/.x-changed.pull/blobs 2>/dev/null | grep -q "$layer" && fail "an unverifiable blob was kept"
ok "no rootfs and no bad blob kept"

# ---- a truncated layer ----
head -c 100 "$T/layer.orig" > "$f"
cloister_pull "$REG/demo/app:1" "$T/x-trunc" --flat --policy "$T/accept.json"
expect_rc 4 "a truncated layer"
[ ! -e "$T/x-trunc" ] || fail "rootfs left after a truncated layer"
cp "$T/layer.orig" "$f"
cloister_pull "$REG/demo/app:1" "$T/repaired" --flat --policy "$T/accept.json"
expect_rc 0 "the repaired registry"
compare "$T/ref/rootfs" "$T/repaired" "pull after the repair equals skopeo + umoci"

# ---- a manifest whose layer digest names another (real) blob ----
make_image "$T/oci" other third
push "oci:$T/oci:other" "$REG/demo/app:other"
python3 - "$T/oci" <<'PY'
import hashlib, json, sys
lay = sys.argv[1]
idx = json.load(open(f"{lay}/index.json"))
by = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in idx["manifests"]}
man = json.load(open(f"{lay}/blobs/sha256/{by['t']['digest'][7:]}"))
other = json.load(open(f"{lay}/blobs/sha256/{by['other']['digest'][7:]}"))
man["layers"][-1] = other["layers"][-1]   # the config's diff_ids stay those of t
b = json.dumps(man).encode()
h = hashlib.sha256(b).hexdigest()
open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
idx["manifests"].append({"mediaType": by["t"]["mediaType"], "digest": "sha256:" + h, "size": len(b),
                         "annotations": {"org.opencontainers.image.ref.name": "swapped"}})
json.dump(idx, open(f"{lay}/index.json", "w"))
PY
push "oci:$T/oci:swapped" "$REG/demo/app:swapped"
cloister_pull "$REG/demo/app:swapped" "$T/x-swapped" --flat --policy "$T/accept.json"
expect_rc 4 "a layer that is not the one the config names"
grep -q 'diff_id' "$T/pull.err" || fail "the refusal does not name the diff_id"
[ ! -e "$T/x-swapped" ] || fail "rootfs left after a diff_id mismatch"
cloister_pull "$REG/demo/app:swapped" "$T/x-swapped-store" --policy "$T/accept.json"
expect_rc 4 "the same in the layered store"
[ ! -d "$T/x-swapped-store/images/sha256" ] || [ -z "$(ls "$T/x-swapped-store/images/sha256")" ] \
    || fail "image recorded although a layer failed"
find "$T/x-swapped-store/layers" -name '.tmp-*' | grep -q . && fail "staging folder left in the store"
ok "no image recorded, no staging folder left"

# ---- a registry that dies mid-pull (behind a slow proxy) ----
make_image "$T/oci" big big
push "oci:$T/oci:big" "$REG/demo/big:1"
reference_unpack "$REG/demo/big:1" "$T/ref-big"
PPORT=$(free_port)
cat > "$T/proxy.py" <<'PY'
import http.client, http.server, sys, time
port, upstream, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class P(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"GET {self.path} range={self.headers.get('Range')}\n")
        c = http.client.HTTPConnection(upstream)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("range", "accept", "authorization")}
        c.request("GET", self.path, headers=hdrs)
        r = c.getresponse()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in ("content-type", "content-length", "content-range", "docker-content-digest", "www-authenticate", "location"):
                self.send_header(k, v)
        self.end_headers()
        slow = "/blobs/" in self.path
        while True:
            chunk = r.read(32768)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
            if slow:
                time.sleep(0.02)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), P).serve_forever()
PY
python3 "$T/proxy.py" "$PPORT" "$REG" "$T/proxy.txt" > "$T/proxy.log" 2>&1 &
PROXY=$!
PIDS="$PIDS $PROXY"
i=0; until curl -s -o /dev/null "http://127.0.0.1:$PPORT/v2/"; do i=$((i+1)); [ $i -lt 100 ] || fail "proxy"; sleep 0.1; done
"$CLI" image pull "127.0.0.1:$PPORT/demo/big:1" "$T/dying" --flat --policy "$T/accept.json" \
    --registry-insecure "127.0.0.1:$PPORT" --retries 1 -q > "$T/pull.out" 2> "$T/pull.err" &
PULL=$!
# wait until part of the big layer has arrived, then kill the proxy
big=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/demo/big/manifests/1" \
    | jq -r '.layers[-1].digest' | cut -d: -f2)
i=0
until [ "$(stat -c %s "$T/.dying.pull/blobs/sha256-$big.partial" 2>/dev/null || echo 0)" -gt 500000 ]; do
    i=$((i+1)); [ $i -lt 300 ] || fail "the big layer never started arriving"; sleep 0.05
done
kill "$PROXY"
wait "$PROXY" 2>/dev/null || true
set +e
wait "$PULL"
RC=$?
set -e
expect_rc 7 "the registry dies in the middle of a layer"
[ ! -e "$T/dying" ] || fail "half-written rootfs left behind"
[ ! -e "$T/.dying.pull/rootfs" ] || fail "staging rootfs left behind"
have=$(stat -c %s "$T/.dying.pull/blobs/sha256-$big.partial")
ok "clean error, no rootfs, $have bytes kept for resuming (hashed again on resume)"
python3 "$T/proxy.py" "$PPORT" "$REG" "$T/proxy.txt" > "$T/proxy.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until curl -s -o /dev/null "http://127.0.0.1:$PPORT/v2/"; do i=$((i+1)); [ $i -lt 100 ] || fail "proxy restart"; sleep 0.1; done
: > "$T/proxy.txt"
cloister_pull "127.0.0.1:$PPORT/demo/big:1" "$T/dying" --flat --policy "$T/accept.json"
expect_rc 0 "the next pull, registry back"
grep -q "blobs/sha256:$big range=bytes=" "$T/proxy.txt" || { cat "$T/proxy.txt"; fail "the download was not resumed"; }
ok "the interrupted layer was resumed with a Range request"
compare "$T/ref-big/rootfs" "$T/dying" "resumed pull equals skopeo + umoci"
[ ! -e "$T/.dying.pull" ] || fail "work folder left after success"
echo "PASS image-tamper"
