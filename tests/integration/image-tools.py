#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers for the image integration tests (standard library only).

  image-tools.py layer KIND OUT.tar        write a test layer (see LAYERS)
  image-tools.py compare A B               compare two trees file by file (type, mode, owner,
                                           size, content, link target, user xattrs, file
                                           mtimes, hard-link groups); exit 1 listing the
                                           differences
  image-tools.py escape-check ROOT OUTSIDE check nothing was written outside ROOT: OUTSIDE
                                           must still hold only its sentinel file
"""
import hashlib
import io
import os
import stat
import sys
import tarfile

MTIME = 1700000000


def _add(tf, name, data=None, mode=0o644, typ=tarfile.REGTYPE, link="", uid=0, gid=0, pax=None, dev=(0, 0)):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = MTIME
    ti.linkname = link
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = pax
    if data is not None:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def _dir(tf, name, mode=0o755, **kw):
    _add(tf, name, typ=tarfile.DIRTYPE, mode=mode, **kw)


def layer_base(tf):
    _dir(tf, "etc")
    _add(tf, "etc/hello.txt", b"hello from layer 1\n")
    _add(tf, "etc/secret.txt", b"to be removed\n", mode=0o600)
    _add(tf, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    _dir(tf, "bin")
    _add(tf, "bin/tool", b"#!/bin/sh\necho tool\n" * 100, mode=0o755)
    _add(tf, "bin/suid", b"suid binary\n", mode=0o4755)
    _add(tf, "bin/tool-link", typ=tarfile.LNKTYPE, link="bin/tool", mode=0o755)
    _add(tf, "bin/sh", typ=tarfile.SYMTYPE, link="tool", mode=0o777)
    _add(tf, "bin/abs", typ=tarfile.SYMTYPE, link="/etc/hello.txt", mode=0o777)
    _dir(tf, "home")
    _dir(tf, "home/user", mode=0o750, uid=1000, gid=1000)
    _add(tf, "home/user/notes", b"user data\n", uid=1000, gid=1000)
    _dir(tf, "var")
    _dir(tf, "var/cache")
    _add(tf, "var/cache/a", b"a")
    _add(tf, "var/cache/b", b"b")
    _dir(tf, "var/cache/sub")
    _add(tf, "var/cache/sub/c", b"c")
    _dir(tf, "tmp", mode=0o1777)
    _add(tf, "usr/lib/deep/file", b"implicit parents\n")  # no directory entries before it
    _add(tf, "xattr-file", b"x", pax={"SCHILY.xattr.user.test": "value1"})
    _add(tf, "fifo", typ=tarfile.FIFOTYPE, mode=0o644)
    rnd = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB, spans several data buffers
    _add(tf, "big.bin", rnd)
    _add(tf, "empty", b"")
    _add(tf, "a" * 120 + "/" + "b" * 120, b"long name\n")  # needs pax or GNU long names


def layer_top(tf):
    # whiteouts: a file, a directory; an opaque directory; replaced and new files
    _add(tf, "etc/.wh.secret.txt", b"")
    _add(tf, "var/.wh.cache", b"")
    _dir(tf, "var/cache")
    _add(tf, "var/cache/new", b"new in layer 2\n")
    _dir(tf, "home/user", mode=0o750, uid=1000, gid=1000)
    _add(tf, "home/user/.wh..wh..opq", b"")
    _add(tf, "home/user/fresh", b"fresh\n", uid=1000, gid=1000)
    _add(tf, "etc/hello.txt", b"hello from layer 2\n", mode=0o640)
    _add(tf, "bin/sh", typ=tarfile.SYMTYPE, link="/bin/tool", mode=0o777)  # replaced symlink
    _add(tf, "newdir/inner/file", b"n\n")


def layer_third(tf):
    _add(tf, "bin/tool", b"#!/bin/sh\necho tool v3\n", mode=0o755)
    _add(tf, "var/cache/.wh.new", b"")
    _add(tf, ".wh.fifo", b"")


def layer_big(tf):
    # incompressible: the blob stays large, so that a transfer can be cut in the middle
    _add(tf, "big/random.bin", os.urandom(6 << 20))
    _add(tf, "big/after", b"the last entry\n")


# ---- malicious layers: each must be refused or confined ----

def mal_dotdot(tf):
    _add(tf, "../escape-dotdot", b"owned\n")


def mal_abs(tf):
    # absolute paths are re-rooted (not refused): must land inside the root
    _add(tf, "/abs-inside", b"confined\n")


def mal_symlink_dir(tf):
    # a symlink to outside, then a file written through it
    _add(tf, "out", typ=tarfile.SYMTYPE, link=os.environ.get("OUTSIDE", "/tmp/outside"), mode=0o777)
    _add(tf, "out/escape-symlink", b"owned\n")


def mal_symlink_rel(tf):
    _add(tf, "up", typ=tarfile.SYMTYPE, link="../../../../../../../../" + os.environ.get("OUTSIDE", "/tmp/outside").lstrip("/"), mode=0o777)
    _add(tf, "up/escape-rel", b"owned\n")


def mal_hardlink(tf):
    _add(tf, "hl", typ=tarfile.LNKTYPE, link=os.environ.get("OUTSIDE", "/tmp/outside") + "/sentinel")


def mal_hardlink_dotdot(tf):
    _add(tf, "hl", typ=tarfile.LNKTYPE, link="../../sentinel")


def mal_whiteout_parent(tf):
    _dir(tf, "d")
    _add(tf, "d/.wh..", b"")


def mal_device(tf):
    _add(tf, "dev-null", typ=tarfile.CHRTYPE, dev=(1, 3), mode=0o666)
    _add(tf, "dev-sda", typ=tarfile.BLKTYPE, dev=(8, 0), mode=0o660)
    _add(tf, "ok", b"fine\n")


def mal_bomb(tf):
    # 128 MiB of zeros: about 130 KiB compressed; the test caps layers at 64 MiB
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            k = min(len(b), self.left)
            b[:k] = bytes(k)
            self.left -= k
            return k

    ti = tarfile.TarInfo("bomb")
    ti.size = 128 << 20
    ti.mtime = MTIME
    tf.addfile(ti, io.BufferedReader(Zeros(ti.size)))


LAYERS = {
    "base": layer_base, "top": layer_top, "third": layer_third, "big": layer_big,
    "mal-dotdot": mal_dotdot, "mal-abs": mal_abs, "mal-symlink-dir": mal_symlink_dir,
    "mal-symlink-rel": mal_symlink_rel, "mal-hardlink": mal_hardlink, "mal-hardlink-dotdot": mal_hardlink_dotdot,
    "mal-whiteout-parent": mal_whiteout_parent, "mal-device": mal_device, "mal-bomb": mal_bomb,
}


def make_layer(kind, out):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        LAYERS[kind](tf)


def walk(root):
    out = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e["sha256"] = hashlib.sha256(f.read()).hexdigest()
                e["size"] = st.st_size
                e["mtime"] = int(st.st_mtime)
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e["rdev"] = st.st_rdev
            try:
                names = sorted(n for n in os.listxattr(p, follow_symlinks=False) if n.startswith("user."))
                e["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False) for n in names}
            except OSError:
                pass
            out[rel] = e
    links = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return out, links


def compare(a, b):
    ta, la = walk(a)
    tb, lb = walk(b)
    diffs = []
    for k in sorted(set(ta) | set(tb)):
        if k not in ta:
            diffs.append(f"only in {b}: {k}")
        elif k not in tb:
            diffs.append(f"only in {a}: {k}")
        elif ta[k] != tb[k]:
            diffs.append(f"{k}: {ta[k]} != {tb[k]}")
    if la != lb:
        diffs.append(f"hard-link groups differ: {la} != {lb}")
    for d in diffs:
        print(d)
    print(f"compared {len(ta)} entries: {len(diffs)} difference(s)")
    return 1 if diffs else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "layer":
        make_layer(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
