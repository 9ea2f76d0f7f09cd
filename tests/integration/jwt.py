# SPDX-License-Identifier: Apache-2.0
"""Mints ES256 JWTs with the openssl CLI, independently of Cloister's JOSE code.
usage: jwt.py KEY.pem HEADER_JSON PAYLOAD_JSON  -> prints the compact JWS"""
import base64, subprocess, sys

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def der_to_raw(der, n=32):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        ln = der[i + 1]
        v = der[i + 2:i + 2 + ln].lstrip(b"\0")
        out += v.rjust(n, b"\0")
        i += 2 + ln
    return out

key, header, payload = sys.argv[1:4]
si = b64u(header.encode()) + "." + b64u(payload.encode())
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=si.encode(),
                     capture_output=True, check=True).stdout
print(si + "." + b64u(der_to_raw(der)))
