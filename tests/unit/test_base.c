/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/base: codecs, cursor, integer parsing, secrets, atomic files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/lazy.h"

static void test_b64_roundtrip(void **state)
{
    (void)state;
    static const struct {
        const char *in, *std, *url;
    } cases[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"\xfb\xff", "+/8=", "-_8"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        size_t n = strlen(cases[i].in);
        CL_AUTO(cl_str) *s = cl_b64_encode(cases[i].in, n, CL_B64_STD);
        CL_AUTO(cl_str) *u = cl_b64_encode(cases[i].in, n, CL_B64_URL);
        assert_string_equal(s, cases[i].std);
        assert_string_equal(u, cases[i].url);
        size_t m = 0;
        struct cl_err e = {0};
        CL_AUTO(cl_bytes) *d1 = cl_b64_decode(s, strlen(s), CL_B64_STD, 64, &m, &e);
        assert_non_null(d1);
        assert_int_equal(m, n);
        assert_memory_equal(d1, cases[i].in, n);
        CL_AUTO(cl_bytes) *d2 = cl_b64_decode(u, strlen(u), CL_B64_URL, 64, &m, &e);
        assert_non_null(d2);
        assert_memory_equal(d2, cases[i].in, n);
    }
}

static void test_b64_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum cl_b64 v;
        int code;
    } bad[] = {
        {"Zg", CL_B64_STD, CL_EPARSE},    /* missing padding */
        {"Zg==", CL_B64_URL, CL_EPARSE},  /* padding in url form */
        {"Zh==", CL_B64_STD, CL_EPARSE},  /* non-zero trailing bits */
        {"Z===", CL_B64_STD, CL_EPARSE},  /* too much padding */
        {"Zm9v!", CL_B64_ANY, CL_EPARSE}, /* bad character */
        {"-_8=", CL_B64_STD, CL_EPARSE},  /* url alphabet in std */
        {"+/8", CL_B64_URL, CL_EPARSE},   /* std alphabet in url */
        {"Z", CL_B64_ANY, CL_EPARSE},     /* impossible length */
        {"AAAAAAAAAAAA", CL_B64_STD, CL_ELIMIT},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        size_t m = 0;
        struct cl_err e = {0};
        cl_bytes *d = cl_b64_decode(bad[i].s, strlen(bad[i].s), bad[i].v, 4, &m, &e);
        assert_null(d);
        assert_int_equal(e.code, bad[i].code);
        assert_true(strlen(e.msg) > 0);
    }
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t out[4];
    size_t n = 0;
    struct cl_err e = {0};
    assert_int_equal(cl_hex_decode("00fFa1", 6, out, sizeof out, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[1], 0xff);
    CL_AUTO(cl_str) *h = cl_hex_encode(out, n);
    assert_string_equal(h, "00ffa1");
    assert_int_equal(cl_hex_decode("abc", 3, out, sizeof out, &n, &e), CL_EPARSE);
    assert_int_equal(cl_hex_decode("zz", 2, out, sizeof out, &n, &e), CL_EPARSE);
    assert_int_equal(cl_hex_decode("0011223344", 10, out, sizeof out, &n, &e), CL_ELIMIT);
}

/* UTF-8: well-formed sequences and the ones RFC 3629 forbids (the twins). */
static void test_utf8_seq(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n, want;
        uint32_t cp;
    } cases[] = {
        {"a", 1, 1, 'a'},
        {"\xc3\xa9", 2, 2, 0xe9},
        {"\xe2\x82\xac", 3, 3, 0x20ac},
        {"\xf0\x9f\x98\x80", 4, 4, 0x1f600},
        {"\xc0\xaf", 2, 0, 0},         /* overlong '/' */
        {"\xe0\x80\xaf", 3, 0, 0},     /* overlong, three bytes */
        {"\xed\xa0\x80", 3, 0, 0},     /* a surrogate */
        {"\xf4\x90\x80\x80", 4, 0, 0}, /* past U+10FFFF */
        {"\xe2\x82\xac", 2, 0, 0},     /* cut by n */
        {"\xc3\x28", 2, 0, 0},         /* not a continuation byte */
        {"\x80", 1, 0, 0},             /* a lone continuation byte */
        {"", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0;
        size_t got = cl_utf8_seq((const uint8_t *)cases[i].s, cases[i].n, &cp);
        if (got != cases[i].want || (got && cp != cases[i].cp))
            fail_msg("case %zu: length %zu code point %x", i, got, (unsigned)cp);
    }
    assert_int_equal(cl_utf8_seq((const uint8_t *)"\xc3\xa9", 2, NULL), 2);
}

static void test_hex_digit_and_pct(void **state)
{
    (void)state;
    assert_int_equal(cl_hex_digit('0'), 0);
    assert_int_equal(cl_hex_digit('f'), 15);
    assert_int_equal(cl_hex_digit('F'), 15);
    assert_int_equal(cl_hex_digit('g'), -1);
    assert_int_equal(cl_hex_digit('\xff'), -1);
    char out[7];
    cl_hex_encode_to("\x00\xab\x10", 3, out);
    assert_string_equal(out, "00ab10");
    size_t n = 0;
    CL_AUTO(cl_str) *d = cl_pct_decode("a%2Fb%2fc+%41", 13, &n);
    assert_string_equal(d, "a/b/c+A");
    assert_int_equal(n, 7);
    /* twins: a '%' without two hex digits after it stays as it is */
    CL_AUTO(cl_str) *bad = cl_pct_decode("%zz%4%", 6, &n);
    assert_string_equal(bad, "%zz%4%");
    CL_AUTO(cl_str) *nul = cl_pct_decode("x%00y", 5, &n);
    assert_int_equal(n, 3); /* an encoded NUL is a byte of the output */
    assert_memory_equal(nul, "x\0y", 3);
}

static void test_write_all(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(cl_write_all(p[1], "hello", 5), 0);
    char got[8] = {0};
    assert_int_equal(read(p[0], got, sizeof got), 5);
    assert_string_equal(got, "hello");
    close(p[0]);
    /* twin: nobody reads (SIGPIPE ignored here): -1 with errno */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    errno = 0;
    assert_int_equal(cl_write_all(p[1], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    signal(SIGPIPE, old);
    close(p[1]);
    assert_int_equal(cl_write_all(-1, "x", 1), -1);
}

/* base/lazy: zlib opened on first use, its function resolved from the table; twins: a library
 * that is absent (the table's code, remembered), one without the symbol, then zlib again. */
static struct {
    const char *(*zlibVersion)(void);
} zfn;
static const struct cl_lazysym zsyms[] = {
    {"zlibVersion", &zfn.zlibVersion, sizeof zfn.zlibVersion}};
static struct cl_lazylib zlib = {.dflt = "libz.so.1",
                                 .what = "zlib",
                                 .ctx = "test: ",
                                 .syms = zsyms,
                                 .nsyms = CL_ARRAY_LEN(zsyms),
                                 .absent_code = CL_ENOTFOUND,
                                 .lock = PTHREAD_MUTEX_INITIALIZER};

static void test_lazy(void **state)
{
    (void)state;
    struct cl_err e = {0};
    assert_int_equal(cl_lazy_load(&zlib, &e), 0);
    assert_true(cl_lazy_have(&zlib));
    assert_non_null(zfn.zlibVersion());
    cl_lazy_soname_set(&zlib, "libcloister-absent.so.0");
    assert_int_equal(cl_lazy_load(&zlib, &e), CL_ENOTFOUND);
    assert_non_null(strstr(e.msg, "test: libcloister-absent.so.0 (zlib) cannot be loaded"));
    assert_false(cl_lazy_have(&zlib));
    memset(&e, 0, sizeof e);
    assert_int_equal(cl_lazy_load(&zlib, &e), CL_ENOTFOUND); /* remembered */
    assert_non_null(strstr(e.msg, "libcloister-absent.so.0"));
    cl_lazy_soname_set(&zlib, "libc.so.6");
    assert_int_equal(cl_lazy_load(&zlib, &e), CL_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "test: libc.so.6 (zlib) has no zlibVersion"));
    cl_lazy_soname_set(&zlib, NULL);
    assert_int_equal(cl_lazy_load(&zlib, NULL), 0);
    assert_non_null(zfn.zlibVersion());
}

static void test_cursor(void **state)
{
    (void)state;
    static const uint8_t buf[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct cl_cursor c = cl_cursor_init(buf, sizeof buf);
    uint16_t a;
    uint32_t b;
    assert_int_equal(cl_cursor_le16(&c, &a), 0);
    assert_int_equal(a, 0x0201);
    assert_int_equal(cl_cursor_be32(&c, &b), 0);
    assert_int_equal(b, 0x03040506);
    uint64_t q;
    assert_int_equal(cl_cursor_le64(&c, &q), CL_EPARSE); /* 3 bytes left */
    assert_int_equal(c.off, 6);                          /* nothing moved */
    struct cl_cursor sub;
    assert_int_equal(cl_cursor_sub(&c, 4, &sub), CL_EPARSE);
    assert_int_equal(cl_cursor_sub(&c, 3, &sub), 0);
    assert_int_equal(cl_cursor_left(&c), 0);
    assert_int_equal(cl_cursor_skip(&sub, SIZE_MAX), CL_EPARSE); /* no overflow */
}

static void test_parse_int(void **state)
{
    (void)state;
    uint64_t u;
    int64_t s;
    struct cl_err e = {0};
    assert_int_equal(cl_parse_u64("42", 0, 100, &u, "x", &e), 0);
    assert_int_equal(u, 42);
    const char *bad[] = {"", "-1", "4x", " 4", "+4", "99999999999999999999999"};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++)
        assert_true(cl_parse_u64(bad[i], 0, UINT64_MAX, &u, "x", &e) < 0);
    assert_int_equal(cl_parse_u64("101", 0, 100, &u, "port", &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "port"));
    assert_int_equal(cl_parse_i64("-5", -10, 10, &s, "x", &e), 0);
    assert_int_equal(s, -5);
    assert_true(cl_parse_i64("-11", -10, 10, &s, "x", &e) < 0);
}

static void test_secret_and_ct(void **state)
{
    (void)state;
    CL_AUTO(cl_secret) *s = cl_secret_from("abc", 3);
    assert_non_null(s);
    assert_int_equal(s->len, 3);
    assert_true(cl_memeq_ct(s->data, "abc", 3));
    assert_false(cl_memeq_ct(s->data, "abd", 3));
    struct cl_err e = {0};
    CL_AUTO(cl_secret) *d = cl_b64_decode_secret("YWJj", 4, CL_B64_STD, &e);
    assert_non_null(d);
    assert_int_equal(d->len, 3);
    assert_memory_equal(d->data, "abc", 3);
}

static void test_err_records_place(void **state)
{
    (void)state;
    struct cl_err e = {0};
    int rc = cl_err_stage(&e, CL_EVERIFY, "bind", "report data %s", "mismatch");
    assert_int_equal(rc, CL_EVERIFY);
    assert_string_equal(e.stage, "bind");
    assert_non_null(strstr(e.file, "test_base.c"));
    assert_true(e.line > 0);
    cl_err_prefix(&e, "sample");
    assert_string_equal(e.msg, "sample: report data mismatch");
    assert_int_equal(cl_err_exit_code(CL_EDENIED), 5);
    assert_string_equal(cl_err_name(CL_ELIMIT), "ELIMIT");
}

static void test_atomic_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/cl-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    CL_AUTO(cl_str) *p = cl_strdupf("%s/sub/f", dir);
    CL_AUTO(cl_str) *sub = cl_strdupf("%s/sub", dir);
    struct cl_err e = {0};
    assert_int_equal(cl_mkdir_p(sub, 0700, &e), 0);
    assert_int_equal(cl_file_write_atomic(p, "one", 3, 0600, &e), 0);
    assert_int_equal(cl_file_write_atomic(p, "two!", 4, 0600, &e), 0);
    size_t n = 0;
    CL_AUTO(cl_bytes) *d = cl_file_read(p, 100, &n, &e);
    assert_non_null(d);
    assert_int_equal(n, 4);
    assert_memory_equal(d, "two!", 4);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_null(cl_file_read(p, 3, &n, &e)); /* over the cap */
    assert_int_equal(e.code, CL_ELIMIT);
    CL_AUTO(cl_str) *missing = cl_strdupf("%s/nope", dir);
    assert_null(cl_file_read(missing, 100, &n, &e));
    assert_int_equal(e.code, CL_ENOTFOUND);
    unlink(p);
    rmdir(sub);
    rmdir(dir);
}

/* The logger escapes what a peer could put in a message: one event is one line, and no byte
 * that a terminal acts on reaches stderr. */
static void test_log_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain text: ok", "plain text: ok"},
        {"a\\nb", "a\\x5cnb"},
        {"refused: x\n2026-12-07T00:00:00Z INFO forged",
         "refused: x\\x0a2026-12-07T00:00:00Z INFO forged"},
        {"cr\rlf\n", "cr\\x0dlf\\x0a"},
        {"\x1b[2J\x1b]0;t\x07", "\\x1b[2J\\x1b]0;t\\x07"},
        {"del\x7f tab\t", "del\\x7f tab\\x09"},
        {"caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93"},   /* UTF-8 kept */
        {"bad \xff \xc3( \xc0\xaf", "bad \\xff \\xc3( \\xc0\\xaf"}, /* invalid, overlong */
        {"c1 \xc2\x9b", "c1 \\u{009b}"},                            /* 8-bit CSI */
        {"ls \xe2\x80\xa8 rlo \xe2\x80\xae", "ls \\u{2028} rlo \\u{202e}"},
        {"sur \xed\xa0\x80", "sur \\xed\\xa0\\x80"}, /* surrogate */
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        char out[256];
        size_t n = cl_log_escape(cases[i].in, out, sizeof out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(out));
    }
    /* cut short: never past cap, never half an escape, ends in "..." */
    char small[12];
    cl_log_escape("\n\n\n\n\n\n", small, sizeof small);
    assert_string_equal(small, "\\x0a\\x0a...");
    cl_log_escape("abcdefghijklmnop", small, sizeof small);
    assert_string_equal(small, "abcdefgh...");
    cl_log_escape(NULL, small, sizeof small);
    assert_string_equal(small, "");
}

/* Through cl_log_at itself: a message with a LF and an ESC is one line on stderr. */
static void test_log_one_line(void **state)
{
    (void)state;
    char path[] = "/tmp/cl-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    cl_log_at(CL_LOG_ERROR, "x/peer.c", 7, "refused: %s: %s", "InvalidRequestPath",
              "a\nZ INFO forged line \x1b[31m");
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    char buf[512] = {0};
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    unlink(path);
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], 0); /* exactly one line */
    assert_null(strchr(buf, 0x1b));
    assert_non_null(strstr(buf, "a\\x0aZ INFO forged line \\x1b[31m (peer.c:7)"));
}

/* A limited log site: the first use is logged, the next ones within the window only counted;
 * once the window has passed (moved back here by hand) the next line carries the count. */
static void test_log_limited(void **state)
{
    (void)state;
    char path[] = "/tmp/cl-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    static struct cl_log_limit lim;
    for (int i = 0; i < 1000; i++)
        cl_log_limited_at(&lim, CL_LOG_WARN, "x/peer.c", 9, "sample TEE use %d", i);
    atomic_store(&lim.next_ns, 1); /* the window is over */
    cl_log_limited_at(&lim, CL_LOG_WARN, "x/peer.c", 9, "sample TEE use %d", 1000);
    cl_log_limited_at(&lim, CL_LOG_WARN, "x/peer.c", 9, "sample TEE use %d", 1001);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    char buf[1024] = {0};
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    unlink(path);
    int lines = 0;
    for (const char *p = buf; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 2);
    assert_non_null(strstr(buf, "sample TEE use 0 (peer.c:9)"));
    assert_non_null(strstr(buf, "sample TEE use 1000 [999 more since the last line] (peer.c:9)"));
    assert_null(strstr(buf, "use 1001"));
    assert_int_equal(atomic_load(&lim.held), 1);
}

/* cl_strdupf past its stack buffer, and cl_strcat_new: the same strings either way */
static void test_str_build(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (size_t n = 0; n < sizeof big; n += 511) {
        big[n] = 0;
        CL_AUTO(cl_str) *a = cl_strdupf("%s.%s", big, "tail");
        CL_AUTO(cl_str) *b = cl_strcat_new(big, ".", "tail", NULL);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(strlen(a), n + 5);
        assert_string_equal(a, b);
        big[n] = 'x';
    }
    CL_AUTO(cl_str) *e = cl_strcat_new("", NULL);
    assert_string_equal(e, "");
    CL_AUTO(cl_str) *f = cl_strdupf("%d-%s", 42, "");
    assert_string_equal(f, "42-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_roundtrip), cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_hex),           cmocka_unit_test(test_hex_digit_and_pct),
        cmocka_unit_test(test_utf8_seq),      cmocka_unit_test(test_log_limited),
        cmocka_unit_test(test_write_all),     cmocka_unit_test(test_lazy),
        cmocka_unit_test(test_cursor),        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_secret_and_ct), cmocka_unit_test(test_err_records_place),
        cmocka_unit_test(test_atomic_write),  cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_log_one_line),  cmocka_unit_test(test_str_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
