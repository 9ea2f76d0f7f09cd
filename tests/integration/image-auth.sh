#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Registry authentication with a real docker-registry: htpasswd Basic auth (credentials from
# --creds and from a containers-auth.json), and the Bearer token flow against a small token
# server (python3 + openssl, ES256 JWTs with an x5c chain the registry trusts): anonymous
# pull tokens for public repositories, credentials for private ones. Each positive case has
# its refusal twin (no credentials, wrong credentials).
. "$(dirname "$0")/image-lib.sh"
need htpasswd

make_image "$T/oci" t base top

# ---- Basic ----
htpasswd -Bbn alice s3cret > "$T/htpasswd"
start_registry basic "auth: {htpasswd: {realm: basic-realm, path: $T/htpasswd}}"
BASIC=$REG
push "oci:$T/oci:t" "$BASIC/demo/app:1" --dest-creds alice:s3cret
reference_unpack "$BASIC/demo/app:1" "$T/ref" --src-creds alice:s3cret

cloister_pull "$BASIC/demo/app:1" "$T/b-none" --flat --policy "$T/accept.json"
expect_rc 5 "Basic: no credentials"
grep -q 'requires credentials' "$T/pull.err" || fail "the refusal does not say credentials are needed"
cloister_pull "$BASIC/demo/app:1" "$T/b-wrong" --flat --policy "$T/accept.json" --creds alice:wrong
expect_rc 5 "Basic: wrong password"
cloister_pull "$BASIC/demo/app:1" "$T/b-ok" --flat --policy "$T/accept.json" --creds alice:s3cret
expect_rc 0 "Basic: --creds"
compare "$T/ref/rootfs" "$T/b-ok" "Basic-auth pull equals skopeo + umoci"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$BASIC" "$(printf alice:s3cret | base64)" > "$T/auth.json"
cloister_pull "$BASIC/demo/app:1" "$T/b-file" --flat --policy "$T/accept.json" --authfile "$T/auth.json"
expect_rc 0 "Basic: --authfile"
[ ! -e "$T/b-none" ] && [ ! -e "$T/b-wrong" ] || fail "a refused pull left a rootfs"

# ---- Bearer tokens ----
openssl ecparam -name prime256v1 -genkey -noout -out "$T/token.key" 2>/dev/null
openssl req -x509 -new -key "$T/token.key" -out "$T/token.crt" -days 2 -subj "/CN=cloister-test-token" 2>/dev/null
TPORT=$(free_port)
cat > "$T/tokensrv.py" <<'PY'
import base64, hashlib, http.server, json, subprocess, sys, time, urllib.parse
port, key, crt, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], capture_output=True, check=True).stdout
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def sign(msg):
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=msg, capture_output=True, check=True).stdout
    # DER SEQUENCE { INTEGER r, INTEGER s } -> raw r || s
    i = 2 if sig[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert sig[i] == 2
        n = sig[i + 1]
        out += sig[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if (u, p) != ("alice", "s3cret"):
                self.send_response(401); self.end_headers(); return
            user = u
        access = []
        for scope in q.get("scope", []):
            typ, name, actions = scope.split(":")
            want = actions.split(",")
            # public repositories: anonymous pull; everything else needs alice
            allowed = want if user else ([a for a in want if a == "pull"] if name.startswith("public/") else [])
            access.append({"type": typ, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": "cloister-test-issuer", "sub": user or "", "aud": q.get("service", [""])[0], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": hashlib.sha256(str(time.time()).encode()).hexdigest(), "access": access}
        hdr = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        si = (b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        tok = si.decode() + "." + b64u(sign(si))
        body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300}).encode()
        with open(log, "a") as f:
            f.write(f"token user={user} scope={q.get('scope')}\n")
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 "$T/tokensrv.py" "$TPORT" "$T/token.key" "$T/token.crt" "$T/tokens.txt" > "$T/tokensrv.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until curl -s -o /dev/null "http://127.0.0.1:$TPORT/token"; do i=$((i+1)); [ $i -lt 100 ] || fail "token server"; sleep 0.1; done
start_registry token "auth: {token: {realm: http://127.0.0.1:$TPORT/token, service: cloister-registry, issuer: cloister-test-issuer, rootcertbundle: $T/token.crt}}"
TOKEN=$REG
push "oci:$T/oci:t" "$TOKEN/public/app:1" --dest-creds alice:s3cret
push "oci:$T/oci:t" "$TOKEN/private/app:1" --dest-creds alice:s3cret
curl -s -o /dev/null -w '%{http_code}' "http://$TOKEN/v2/public/app/manifests/1" | grep -q 401 || fail "registry does not ask for a token"

: > "$T/tokens.txt"
cloister_pull "$TOKEN/public/app:1" "$T/t-anon" --flat --policy "$T/accept.json"
expect_rc 0 "Bearer: anonymous pull of a public repository"
compare "$T/ref/rootfs" "$T/t-anon" "token-auth pull equals skopeo + umoci"
n=$(grep -c 'token user=None' "$T/tokens.txt" || true)
[ "$n" = 1 ] || fail "expected one anonymous token request, saw $n"
ok "one token fetched and reused for manifest, config and layers"
cloister_pull "$TOKEN/private/app:1" "$T/t-denied" --flat --policy "$T/accept.json"
expect_rc 5 "Bearer: anonymous pull of a private repository"
cloister_pull "$TOKEN/private/app:1" "$T/t-wrong" --flat --policy "$T/accept.json" --creds alice:nope
expect_rc 5 "Bearer: wrong credentials at the token realm"
cloister_pull "$TOKEN/private/app:1" "$T/t-ok" --flat --policy "$T/accept.json" --creds alice:s3cret
expect_rc 0 "Bearer: credentials at the token realm"
grep -q 'token user=alice' "$T/tokens.txt" || fail "the token realm never saw the credentials"
compare "$T/ref/rootfs" "$T/t-ok" "private token-auth pull equals skopeo + umoci"
echo "PASS image-auth"
