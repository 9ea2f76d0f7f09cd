/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ground every Cloister module stands on: error results that name the file, line and
 * stage that refused; logging; the secret type; the bounded cursor for binary parsing;
 * base64/base64url/hex codecs; integer parsing; file helpers (atomic write, bounded read).
 * Nothing here knows about any other module.
 */
#ifndef CL_BASE_H
#define CL_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- attributes and ownership helpers ---- */

#define CL_MUST_CHECK __attribute__((warn_unused_result))
#define CL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CL_UNUSED __attribute__((unused))
#define CL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * CL_AUTO(type) declares an owned local released at scope exit by cl_auto_<type>(type **).
 * Every CL_AUTO local starts as NULL. CL_STEAL hands ownership to the caller.
 */
#define CL_AUTO(type) __attribute__((cleanup(cl_auto_##type))) type
#define CL_STEAL(p) ((__typeof__(p))cl_steal_ptr((void **)&(p)))

static inline void *cl_steal_ptr(void **pp)
{
    void *p = *pp;
    *pp = NULL;
    return p;
}

/* Plain heap memory (free). */
typedef char cl_str;
typedef uint8_t cl_bytes;
void cl_auto_cl_str(cl_str **p);
void cl_auto_cl_bytes(cl_bytes **p);

/* ---- results ---- */

enum cl_errcode {
    CL_OK = 0,
    CL_EINVAL = -1,        /* caller or configuration error */
    CL_EPARSE = -2,        /* malformed input */
    CL_ELIMIT = -3,        /* a named limit was hit */
    CL_EVERIFY = -4,       /* a signature, digest, binding or chain did not verify */
    CL_EDENIED = -5,       /* a policy said no */
    CL_ENOTFOUND = -6,     /* no such thing */
    CL_EIO = -7,           /* operating system or network failure */
    CL_ENOMEM = -8,        /* allocation failed */
    CL_EEXPIRED = -9,      /* a token, session or value is past its lifetime */
    CL_EUNSUPPORTED = -10, /* an algorithm or format we do not implement */
    CL_EEXISTS = -11,      /* already present */
};

#define CL_ERR_MSG_MAX 512

/* Detail of a failure. `stage` is a short static name of the step that refused ("parse",
 * "bind", "signature", "chain", "tcb", "policy", ...); `file`/`line` name the check. */
struct cl_err {
    int code;
    const char *stage;
    const char *file;
    int line;
    char msg[CL_ERR_MSG_MAX];
};

/* Records code, stage, place and message into err (if non-NULL); returns code, so that
 * `return cl_err_set(err, CL_EPARSE, "field x: ...")` reads as one line. */
#define cl_err_set(err, code, ...)                                                                 \
    cl_err_set_at((err), (code), NULL, __FILE__, __LINE__, __VA_ARGS__)
#define cl_err_stage(err, code, stage, ...)                                                        \
    cl_err_set_at((err), (code), (stage), __FILE__, __LINE__, __VA_ARGS__)
CL_PRINTF(6, 7)
int cl_err_set_at(struct cl_err *err, int code, const char *stage, const char *file, int line,
                  const char *fmt, ...);
/* Prefixes the existing message with "<prefix>: " keeping place and code; returns the code. */
CL_PRINTF(2, 3) int cl_err_prefix(struct cl_err *err, const char *fmt, ...);
void cl_err_clear(struct cl_err *err);
/* At the top of a function that dereferences err: a NULL err then records into a local. */
#define CL_ERR_OR_LOCAL(err)                                                                       \
    struct cl_err cl_err_local_ = {0};                                                             \
    if (!(err))                                                                                    \
    (err) = &cl_err_local_
/* Short name of a code: "EPARSE", ... */
const char *cl_err_name(int code);
/* Exit status for the CLI (documented in docs/cli.md): 0 ok, 2 usage/config, 3 parse,
 * 4 verify, 5 denied, 6 not found, 7 I/O, 8 limit, 9 expired, 1 other. */
int cl_err_exit_code(int code);

/* ---- logging ---- */

/* Every log line is one line of text whatever its arguments carry (request paths, TEE names,
 * peer-chosen strings): cl_log_at passes the formatted message through cl_log_escape, which
 * writes control bytes (C0, DEL), C1 controls, the Unicode line separators and bidi overrides,
 * invalid UTF-8 and the backslash itself as \xNN (\u{NNNN} for the Unicode ones). out gets at
 * most cap - 1 bytes and a NUL; a message cut short ends in "...". Returns strlen(out). */
#define CL_LOG_MAX_LINE 4096
size_t cl_log_escape(const char *in, char *out, size_t cap);

enum cl_log_level { CL_LOG_ERROR = 0, CL_LOG_WARN, CL_LOG_INFO, CL_LOG_DEBUG };
void cl_log_set_level(enum cl_log_level lvl);
/* One JSON object per line ({"ts","level","msg","src"}) instead of text; default off. */
void cl_log_set_json(bool on);
enum cl_log_level cl_log_get_level(void);
CL_PRINTF(4, 5)
void cl_log_at(enum cl_log_level lvl, const char *file, int line, const char *fmt, ...);
#define cl_error(...) cl_log_at(CL_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define cl_warn(...) cl_log_at(CL_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define cl_info(...) cl_log_at(CL_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define cl_debug(...) cl_log_at(CL_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
/* A WARN line at most once per CL_LOG_LIMIT_NS for one call site, for events a peer can
 * trigger at request rate: the first is logged at once; later ones within the window are
 * counted, and the next line logged carries the count ("[N more since the last line]"). A
 * zeroed struct is ready. */
#define CL_LOG_LIMIT_NS (60ull * 1000000000ull)
struct cl_log_limit {
    _Atomic uint64_t next_ns; /* monotonic time before which lines are only counted */
    _Atomic uint64_t held;    /* lines counted, not logged, since the last one logged */
};
CL_PRINTF(5, 6)
void cl_log_limited_at(struct cl_log_limit *lim, enum cl_log_level lvl, const char *file, int line,
                       const char *fmt, ...);
/* Every use of a switch ending in _insecure goes through this. Uses at start-up are logged
 * each time; a use per request (the sample TEE, a header JWK) is logged the first time and
 * then once a minute with the number of uses since, so that a peer cannot flood the log. */
#define cl_insecure(name, ...)                                                                     \
    do {                                                                                           \
        static struct cl_log_limit cl_insecure_lim_;                                               \
        cl_log_limited_at(&cl_insecure_lim_, CL_LOG_WARN, __FILE__, __LINE__,                      \
                          "INSECURE " name ": " __VA_ARGS__);                                      \
    } while (0)

/* ---- secrets ---- */

/* Key material: wiped with explicit_bzero on free, never logged. */
struct cl_secret {
    size_t len;
    uint8_t *data;
};
typedef struct cl_secret cl_secret;
/* Returns new (zero-filled, len bytes; len may be 0) or NULL. */
struct cl_secret *cl_secret_new(size_t len);
/* Returns a new secret holding a copy of buf. */
struct cl_secret *cl_secret_from(const void *buf, size_t len);
void cl_secret_free(struct cl_secret *s);
void cl_auto_cl_secret(struct cl_secret **p);
/* Constant-time equality of two buffers of the same length. */
bool cl_memeq_ct(const void *a, const void *b, size_t len);
/* Wipe and free a heap buffer of known length. */
void cl_free_wipe(void *p, size_t len);

/* ---- bounded cursor for binary parsing ---- */

struct cl_cursor {
    const uint8_t *buf;
    size_t len;
    size_t off;
};
static inline struct cl_cursor cl_cursor_init(const void *buf, size_t len)
{
    struct cl_cursor c = {(const uint8_t *)buf, len, 0};
    return c;
}
static inline size_t cl_cursor_left(const struct cl_cursor *c)
{
    return c->len - c->off;
}
/* Each returns 0 or CL_EPARSE when fewer than n bytes remain; nothing moves on failure. */
CL_MUST_CHECK int cl_cursor_take(struct cl_cursor *c, size_t n, const uint8_t **out);
CL_MUST_CHECK int cl_cursor_skip(struct cl_cursor *c, size_t n);
CL_MUST_CHECK int cl_cursor_copy(struct cl_cursor *c, void *dst, size_t n);
CL_MUST_CHECK int cl_cursor_u8(struct cl_cursor *c, uint8_t *v);
CL_MUST_CHECK int cl_cursor_le16(struct cl_cursor *c, uint16_t *v);
CL_MUST_CHECK int cl_cursor_le32(struct cl_cursor *c, uint32_t *v);
CL_MUST_CHECK int cl_cursor_le64(struct cl_cursor *c, uint64_t *v);
CL_MUST_CHECK int cl_cursor_be16(struct cl_cursor *c, uint16_t *v);
CL_MUST_CHECK int cl_cursor_be32(struct cl_cursor *c, uint32_t *v);
CL_MUST_CHECK int cl_cursor_be64(struct cl_cursor *c, uint64_t *v);
/* Sub-cursor over the next n bytes (which the parent skips). */
CL_MUST_CHECK int cl_cursor_sub(struct cl_cursor *c, size_t n, struct cl_cursor *sub);

/* ---- codecs ---- */

enum cl_b64 {
    CL_B64_STD,        /* RFC 4648 §4 with padding; decoding requires correct padding */
    CL_B64_URL,        /* RFC 4648 §5 without padding; decoding refuses '=' */
    CL_B64_URL_ANYPAD, /* decode only: url alphabet, padding optional */
    CL_B64_ANY,        /* decode only: either alphabet, padding optional */
};
/* Returns a new NUL-terminated string or NULL (ENOMEM). */
cl_str *cl_b64_encode(const void *buf, size_t len, enum cl_b64 variant);
/* Decodes; returns a new buffer (NUL-terminated for convenience, *outlen excludes it) or NULL
 * with err set (EPARSE naming the offset of the first bad character, or ELIMIT beyond max). */
cl_bytes *cl_b64_decode(const char *s, size_t slen, enum cl_b64 variant, size_t max, size_t *outlen,
                        struct cl_err *err);
/* Decodes straight into a secret. */
struct cl_secret *cl_b64_decode_secret(const char *s, size_t slen, enum cl_b64 variant,
                                       struct cl_err *err);
cl_str *cl_hex_encode(const void *buf, size_t len);
/* Lower-case hex of buf into out, which holds 2 * len + 1 bytes (NUL-terminated). */
void cl_hex_encode_to(const void *buf, size_t len, char *out);
/* The value of one hex digit (either case), or -1. */
int cl_hex_digit(int c);
/* Length (1..4) of the well-formed UTF-8 sequence at s[0..n), or 0 (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF, no sequence cut by n). *cp (may be NULL) gets
 * the code point. */
size_t cl_utf8_seq(const uint8_t *s, size_t n, uint32_t *cp);
/* Decodes an even-length hex string (either case) into out[outcap]; returns bytes or <0. */
CL_MUST_CHECK int cl_hex_decode(const char *s, size_t slen, uint8_t *out, size_t outcap,
                                size_t *outlen, struct cl_err *err);
/* Percent-decoding (RFC 3986 §2.1) of s[0..slen): each "%XX" with two hex digits becomes its
 * byte, anything else is kept as is ('+' stays '+'). Returns a new NUL-terminated string
 * (*outlen, if non-NULL, excludes the NUL and counts any decoded NUL bytes) or NULL (ENOMEM). */
cl_str *cl_pct_decode(const char *s, size_t slen, size_t *outlen);

/* ---- integers and strings ---- */

/* Whole-string decimal parse with range and trailing-junk checks; `what` names the field. */
CL_MUST_CHECK int cl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                               const char *what, struct cl_err *err);
CL_MUST_CHECK int cl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out,
                               const char *what, struct cl_err *err);
/* asprintf that returns a new string or NULL. */
CL_PRINTF(1, 2) cl_str *cl_strdupf(const char *fmt, ...);
/* The strings up to the NULL, concatenated into a new string; NULL when out of memory. For
 * hot paths joining long strings (a JWS is three base64url parts), where printf's "%s" copies
 * byte by byte. */
__attribute__((sentinel)) cl_str *cl_strcat_new(const char *first, ...);
/* Checked size arithmetic: false on overflow. */
static inline bool cl_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool cl_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
/* Fills buf with n bytes from the OS RNG (getrandom); CL_EIO on failure. */
CL_MUST_CHECK int cl_random(void *buf, size_t n, struct cl_err *err);
/* Monotonic and wall clocks. */
uint64_t cl_now_mono_ns(void);
int64_t cl_now_unix(void);

/* ---- files ---- */

/* Reads a whole file of at most max bytes; returns new (NUL-terminated) or NULL with err
 * (ENOTFOUND, EIO, ELIMIT). */
cl_bytes *cl_file_read(const char *path, size_t max, size_t *outlen, struct cl_err *err);
/* Writes data to path atomically: temporary file in the same folder, fsync, rename, fsync of
 * the folder. A crash leaves either the old or the new content, never a mix. mode e.g. 0600. */
CL_MUST_CHECK int cl_file_write_atomic(const char *path, const void *data, size_t len,
                                       unsigned mode, struct cl_err *err);
/* Writes all n bytes of buf to fd (a blocking descriptor), again after EINTR and after a short
 * write: 0, or -1 with errno set (EIO when write() returned 0). */
CL_MUST_CHECK int cl_write_all(int fd, const void *buf, size_t n);
/* mkdir -p with mode for each created component. */
CL_MUST_CHECK int cl_mkdir_p(const char *path, unsigned mode, struct cl_err *err);

#endif
