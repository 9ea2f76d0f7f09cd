#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A decoded %00 no longer cuts a resource path short: POST .../victim%00.txt is refused (400)
# and does not overwrite `victim`; %0a, %1f, %7f and a raw control byte are refused the same
# way, on the admin and the public side; a GET of `victim` still serves the original.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
TOKEN=$(admin_token)

st=$(http POST /kbs/v0/resource/repo/key/victim -H "Authorization: Bearer $TOKEN" --data-binary original)
expect_status 200 "$st" "set repo/key/victim"
for suffix in '%00.txt' '%00' '%0a' '%1f' '%7F' '%0d%0a'; do
    st=$(http POST "/kbs/v0/resource/repo/key/victim$suffix" -H "Authorization: Bearer $TOKEN" \
        --data-binary overwritten)
    expect_status 400 "$st" "POST victim$suffix"
    st=$(http GET "/kbs/v0/resource/repo/key/victim$suffix")
    expect_status 400 "$st" "GET victim$suffix"
    st=$(http DELETE "/kbs/v0/resource/repo/key/victim$suffix" -H "Authorization: Bearer $TOKEN")
    expect_status 400 "$st" "DELETE victim$suffix"
done
grep -rq overwritten "$T/resources" && fail "the stored resource was overwritten"
grep -rq original "$T/resources" || fail "the stored resource is gone"
# an invalid UTF-8 path gets trustee's ErrorInformation, not {}
st=$(http GET "/kbs/v0/resource/repo/key/%ff%fe")
expect_status 404 "$st" "invalid UTF-8 in a resource path"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["type"].endswith("InvalidRequestPath"), d; assert d["detail"], d' \
    "$T/body" || fail "invalid UTF-8 path: body $(head -c 200 "$T/body")"
ok "invalid UTF-8 path answered with ErrorInformation"
echo PASS
