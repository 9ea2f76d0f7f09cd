# SPDX-License-Identifier: Apache-2.0
# The preamble every tests/regress/<case>/run.sh sources first. Sets HERE (the case's folder),
# SRC, BUILD, CLI (the cloister CLI), VEC (the vectors folder; may be empty or absent), T (a
# temporary folder removed at exit), and skip (exit 77) / fail / ok / need / built.
# A case that runs daemons sets REGRESS_WITH before sourcing: "integration" brings
# tests/integration/lib.sh (cloister-kbs helpers; T and its processes cleaned up at exit),
# "image" brings tests/integration/image-lib.sh (a loopback registry; it sources lib.sh too).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${CLOISTER_SRC:-$(cd "$HERE/../../.." && pwd)}
BUILD=${CLOISTER_BUILD:-$SRC/build}
CLI=$BUILD/src/cmd/cloister
VEC=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-}}

case ${REGRESS_WITH:-} in
integration | image)
    CLOISTER_SRC=$SRC CLOISTER_BUILD=$BUILD AGENT_LIB_DIR=$SRC/tests/integration
    export CLOISTER_SRC CLOISTER_BUILD
    if [ "$REGRESS_WITH" = image ]; then . "$AGENT_LIB_DIR/image-lib.sh"; else . "$AGENT_LIB_DIR/lib.sh"; fi
    ;;
"")
    T=$(mktemp -d /tmp/cloister-regress.XXXXXX)
    trap 'rm -rf "$T"' EXIT INT TERM
    skip() { echo "SKIP: $*"; exit 77; }
    fail() { echo "FAIL: $*"; exit 1; }
    ok() { echo "ok - $*"; }
    need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }
    ;;
*) echo "FAIL: REGRESS_WITH=$REGRESS_WITH (integration, image or unset)"; exit 1 ;;
esac

# built FILE...: each must be an executable of this build
built() { for f in "$@"; do [ -x "$f" ] || fail "$f not built"; done; }
