#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes hand-made tar streams, one file per case, into the folder given: the reproducer of
this folder (gnu-k-4097-size-smuggle) and the neighbouring shapes of the same class (meta
headers that other tar readers read differently). Headers are built byte by byte here, not
with Python's tarfile, so that the streams can be wrong in exactly the way a case needs."""
import os
import sys

BLOCK = 512


def octal(n, width):
    return (b"%0*o" % (width - 1, n)) + b"\0"


def header(name, typ=b"0", size=0, link=b"", magic=b"ustar\x0000", prefix=b"", size_field=None):
    h = bytearray(BLOCK)
    h[0:len(name)] = name
    h[100:108] = octal(0o644, 8)
    h[108:116] = octal(0, 8)
    h[116:124] = octal(0, 8)
    h[124:136] = size_field if size_field is not None else octal(size, 12)
    h[136:148] = octal(0, 12)
    h[156:157] = typ
    h[157:157 + len(link)] = link
    h[257:257 + len(magic)] = magic
    h[345:345 + len(prefix)] = prefix
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(data):
    return data + b"\0" * ((BLOCK - len(data) % BLOCK) % BLOCK)


def member(name, data=b"", typ=b"0", **kw):
    return header(name, typ, len(data), **kw) + pad(data)


def pax(records):
    body = b""
    for k, v in records:
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(str(n).encode()) + len(rec) != n:
            n += 1
        body += str(n).encode() + rec
    return header(b"PaxHeader", b"x", len(body)) + pad(body)


def gnu_long(typ, data):
    return header(b"././@LongLink", typ, len(data), magic=b"ustar  \0") + pad(data)


END = b"\0" * (2 * BLOCK)


def smuggle_payload():
    """767 bytes of `f`: bytes 512.. are, with the padding, a symlink header hidden -> /etc/shadow."""
    inner = header(b"hidden", b"2", 0, link=b"/etc/shadow", magic=b"")
    return b"A" * 512 + inner[:255]


def cases():
    c = {}
    # The reported stream: pax size=767, then a GNU 'K' of exactly 4097 bytes (4096 + NUL),
    # then `f`. GNU tar and libarchive read one 767-byte `f`; the old reader wrote the K's NUL
    # into the low byte of the pending size (767 -> 512) and found `hidden` in f's data.
    data = smuggle_payload()  # the zero padding after its 767 bytes completes the inner header
    c["gnu-k-4097-size-smuggle"] = (pax([(b"size", b"767")]) + gnu_long(b"K", b"k" * 4096 + b"\0")
                                    + header(b"f", b"0", 0) + pad(data) + END)
    # the same with 'L': its NUL landed in the first byte of a pending link target
    c["gnu-l-4097-clears-link"] = (gnu_long(b"K", b"target") + gnu_long(b"L", b"l" * 4096 + b"\0")
                                   + header(b"x", b"2", 0) + END)
    # 4097 bytes without a NUL: one byte more than a path may hold
    c["gnu-l-4097-no-nul"] = gnu_long(b"L", b"m" * 4097) + member(b"y", b"data") + END
    # an ordinary GNU long name (4096 bytes + NUL, as GNU tar writes it)
    c["gnu-l-4096-ok"] = gnu_long(b"L", b"d/" * 2047 + b"ab\0") + member(b"z", b"data") + END
    # two long names for one entry, a pax path and a GNU long name for one entry
    c["gnu-l-twice"] = gnu_long(b"L", b"first\0") + gnu_long(b"L", b"second\0") + member(b"n", b"x") + END
    c["pax-path-and-gnu-l"] = pax([(b"path", b"paxname")]) + gnu_long(b"L", b"gnuname\0") + member(b"n", b"x") + END
    c["gnu-l-then-pax-path"] = gnu_long(b"L", b"gnuname\0") + pax([(b"path", b"paxname")]) + member(b"n", b"x") + END
    # data declared on entries that carry none: readers disagree on whether it is skipped
    c["symlink-with-size"] = (header(b"s", b"2", 512, link=b"t") + pad(member(b"inner", b"in")[:512])
                              + member(b"after", b"x") + END)
    c["dir-with-size"] = header(b"d/", b"5", 512) + member(b"inner", b"in")[:512] + member(b"after", b"x") + END
    c["v7-dir-with-size"] = header(b"d/", b"0", 512) + member(b"inner", b"in")[:512] + END
    c["hardlink-with-size"] = member(b"a", b"x") + header(b"b", b"1", 3, link=b"a") + pad(b"abc") + END
    c["pax-size-on-symlink"] = pax([(b"size", b"512")]) + header(b"s", b"2", 0, link=b"t") + member(b"inner", b"in")[:512] + END
    # pax records repeated, or a global header that would set a path
    c["pax-size-twice"] = pax([(b"size", b"512"), (b"size", b"3")]) + header(b"f", b"0", 0) + pad(b"abc") + END
    c["pax-global-empty"] = header(b"GlobalHead", b"g", 0) + member(b"f", b"x") + END
    c["pax-then-end"] = member(b"f", b"x") + pax([(b"comment", b"nothing follows")]) + END
    c["pax-linkpath-empty-field"] = pax([(b"linkpath", b"target")]) + header(b"x", b"2", 0) + END
    c["gnu-k-empty-field"] = gnu_long(b"K", b"target\0") + gnu_long(b"L", b"name\0") + header(b"x", b"2", 0) + END
    c["gnu-kl-long-symlink"] = (gnu_long(b"K", b"t" * 150 + b"\0") + gnu_long(b"L", b"n" * 150 + b"\0")
                                + header(b"n" * 100, b"2", 0, link=b"t" * 100) + END)
    c["pax-two-headers"] = pax([(b"path", b"one")]) + pax([(b"path", b"two")]) + member(b"f", b"x") + END
    c["pax-size-smuggle"] = pax([(b"size", b"1024")]) + header(b"f", b"0", 0) + pad(b"B" * 1024) + END
    c["ustar-prefix"] = member(b"name", b"x", prefix=b"pre/fix") + END
    c["gnu-magic-prefix-ignored"] = member(b"name", b"x", magic=b"ustar  \0", prefix=b"pre") + END
    return c


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    only = sys.argv[2:] or None
    for name, data in cases().items():
        if only and name not in only:
            continue
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
