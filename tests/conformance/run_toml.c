/* SPDX-License-Identifier: Apache-2.0 */
/*
 * toml-test conformance: every case listed in toml-test's tests/files-toml-1.0.0 is run
 * through cl_toml_parse_tagged. A valid/X.toml must parse and equal valid/X.json under
 * toml-test's rules (same tree and tags; strings, booleans and integers by value; floats by
 * value with nan equal to nan; date-times by the moment they name, offsets applied, fraction
 * compared to the nanosecond). An invalid/X.toml must be refused. Prints each failure and a
 * total; exits 1 on any failure, 77 when the vectors are absent.
 *
 * Vectors: $CLOISTER_VECTORS or $CLOISTER_VECTORS_DEFAULT, folder toml-test/tests; a
 * directory may also be given as the first argument. Read at test time, never copied.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "toml/toml.h"

static void drop(json_t **v)
{
    json_decref(*v);
}
#define AUTO_JSON __attribute__((cleanup(drop))) json_t

/* ---- comparing toml-test's tagged values ---- */

struct moment {
    int64_t y, mo, d, h, mi, s, nano;
    int64_t offset_min;
    bool has_date, has_time, has_offset;
};

static bool digits(const char *s, int n, int64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* Reads RFC 3339 text in any of TOML's four shapes (' ', 't', 'z' accepted). */
static bool read_moment(const char *s, struct moment *m)
{
    memset(m, 0, sizeof *m);
    size_t n = strlen(s), i = 0;
    if (n >= 10 && s[4] == '-') {
        if (!digits(s, 4, &m->y) || !digits(s + 5, 2, &m->mo) || !digits(s + 8, 2, &m->d))
            return false;
        m->has_date = true;
        i = 10;
        if (i == n)
            return true;
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return false;
        i++;
    }
    if (n - i < 8 || !digits(s + i, 2, &m->h) || !digits(s + i + 3, 2, &m->mi) ||
        !digits(s + i + 6, 2, &m->s))
        return false;
    m->has_time = true;
    i += 8;
    if (i < n && s[i] == '.') {
        int k = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
            if (k < 9)
                m->nano = m->nano * 10 + (s[i] - '0');
        for (; k < 9; k++)
            m->nano *= 10;
    }
    if (i == n)
        return true;
    m->has_offset = true;
    if (s[i] == 'Z' || s[i] == 'z')
        return i + 1 == n;
    int64_t oh, om;
    if (n - i != 6 || (s[i] != '+' && s[i] != '-') || !digits(s + i + 1, 2, &oh) ||
        !digits(s + i + 4, 2, &om))
        return false;
    m->offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool same_moment(const char *type, const char *want, const char *have)
{
    struct moment a, b;
    if (!read_moment(want, &a) || !read_moment(have, &b))
        return false;
    if (a.has_date != b.has_date || a.has_time != b.has_time || a.has_offset != b.has_offset)
        return false;
    if (strcmp(type, "datetime") == 0) {
        int64_t ta = (days_from_civil(a.y, a.mo, a.d) * 86400 + a.h * 3600 + a.mi * 60 + a.s) -
                     a.offset_min * 60;
        int64_t tb = (days_from_civil(b.y, b.mo, b.d) * 86400 + b.h * 3600 + b.mi * 60 + b.s) -
                     b.offset_min * 60;
        return ta == tb && a.nano == b.nano;
    }
    return a.y == b.y && a.mo == b.mo && a.d == b.d && a.h == b.h && a.mi == b.mi && a.s == b.s &&
           a.nano == b.nano;
}

static bool read_float(const char *s, double *d)
{
    if (strcmp(s, "nan") == 0 || strcmp(s, "+nan") == 0 || strcmp(s, "-nan") == 0) {
        *d = NAN;
        return true;
    }
    if (strcmp(s, "inf") == 0 || strcmp(s, "+inf") == 0) {
        *d = INFINITY;
        return true;
    }
    if (strcmp(s, "-inf") == 0) {
        *d = -INFINITY;
        return true;
    }
    char *end = NULL;
    errno = 0;
    *d = strtod(s, &end);
    return end != s && *end == '\0';
}

static bool same_scalar(const char *type, const char *want, const char *have)
{
    if (strcmp(type, "float") == 0) {
        double a, b;
        if (!read_float(want, &a) || !read_float(have, &b))
            return false;
        if (isnan(a) || isnan(b))
            return isnan(a) && isnan(b);
        return a == b && signbit(a) == signbit(b);
    }
    if (strcmp(type, "integer") == 0) {
        char *ea = NULL, *eb = NULL;
        errno = 0;
        long long a = strtoll(want, &ea, 10), b = strtoll(have, &eb, 10);
        return errno == 0 && *ea == '\0' && *eb == '\0' && a == b;
    }
    if (strcmp(type, "datetime") == 0 || strcmp(type, "datetime-local") == 0 ||
        strcmp(type, "date-local") == 0 || strcmp(type, "time-local") == 0)
        return same_moment(type, want, have);
    return strcmp(want, have) == 0; /* string, bool */
}

/* jansson refuses U+0000 in object keys, which toml-test uses ("\u0000" = ...). Before
 * loading an expected file, \u0000 escapes inside keys become \uFDD0 (a noncharacter no case
 * uses); unmark_nul turns it back into a NUL when looking the key up in what we parsed. */
static void mark_nul_keys(char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i] != '"')
            continue;
        size_t start = i++;
        while (i < n && t[i] != '"')
            i += t[i] == '\\' ? 2 : 1;
        size_t j = i + 1;
        while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n' || t[j] == '\r'))
            j++;
        if (j >= n || t[j] != ':')
            continue;
        for (size_t k = start + 1; k + 5 < i; k++) {
            if (t[k] != '\\')
                continue;
            if (memcmp(t + k + 1, "u0000", 5) == 0)
                memcpy(t + k + 1, "uFDD0", 5);
            k++;
        }
    }
}

static size_t unmark_nul(const char *k, size_t klen, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < klen && o < cap; i++) {
        if (klen - i >= 3 && memcmp(k + i, "\xEF\xB7\x90", 3) == 0) {
            out[o++] = '\0';
            i += 2;
        } else {
            out[o++] = k[i];
        }
    }
    return o;
}

/* A tagged scalar is an object whose "type" member is a plain string (a table's members
 * are always objects or arrays in this form). */
static bool is_tagged(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 2 &&
           json_is_string(json_object_get(v, "type")) &&
           json_is_string(json_object_get(v, "value"));
}

static bool same(const json_t *want, const json_t *have, char *where, size_t cap)
{
    if (is_tagged(want) || is_tagged(have)) {
        if (!is_tagged(want) || !is_tagged(have))
            return false;
        const char *tw = json_string_value(json_object_get(want, "type"));
        const char *th = json_string_value(json_object_get(have, "type"));
        if (strcmp(tw, th) != 0)
            return false;
        return same_scalar(tw, json_string_value(json_object_get(want, "value")),
                           json_string_value(json_object_get(have, "value")));
    }
    if (json_is_array(want)) {
        if (!json_is_array(have) || json_array_size(want) != json_array_size(have))
            return false;
        for (size_t i = 0; i < json_array_size(want); i++) {
            if (!same(json_array_get(want, i), json_array_get(have, i), where, cap)) {
                size_t l = strlen(where);
                snprintf(where + l, cap - l, " <[%zu]", i);
                return false;
            }
        }
        return true;
    }
    if (json_is_object(want)) {
        if (!json_is_object(have) || json_object_size(want) != json_object_size(have))
            return false;
        const char *k;
        size_t klen;
        json_t *v;
        json_object_keylen_foreach((json_t *)(uintptr_t)want, k, klen, v)
        {
            char key[1024];
            size_t n = unmark_nul(k, klen, key, sizeof key);
            json_t *h = json_object_getn(have, key, n);
            if (!h || !same(v, h, where, cap)) {
                size_t l = strlen(where);
                snprintf(where + l, cap - l, " <.%.*s", (int)klen, k);
                return false;
            }
        }
        return true;
    }
    return false;
}

/* ---- running the list ---- */

static char *read_all(const char *path, size_t *len)
{
    struct cl_err err = {0};
    cl_bytes *b = cl_file_read(path, 2 * (size_t)CL_TOML_MAX_INPUT, len, &err);
    return (char *)b;
}

static bool run_valid(const char *dir, const char *rel)
{
    CL_AUTO(cl_str) *path = cl_strdupf("%s/%s", dir, rel);
    CL_AUTO(cl_str) *jpath = cl_strdupf("%s/%.*s.json", dir, (int)(strlen(rel) - 5), rel);
    if (!path || !jpath)
        return false;
    size_t len = 0, jlen = 0;
    CL_AUTO(cl_str) *text = read_all(path, &len);
    CL_AUTO(cl_str) *jtext = read_all(jpath, &jlen);
    if (!text || !jtext) {
        printf("FAIL %s: cannot read the case\n", rel);
        return false;
    }
    mark_nul_keys(jtext, jlen);
    json_error_t je;
    AUTO_JSON *want = json_loadb(jtext, jlen, JSON_ALLOW_NUL, &je);
    if (!want) {
        printf("FAIL %s: expected JSON unreadable: %s\n", rel, je.text);
        return false;
    }
    struct cl_err err = {0};
    AUTO_JSON *have = cl_toml_parse_tagged(text, len, &err);
    if (!have) {
        printf("FAIL %s: refused: %s\n", rel, err.msg);
        return false;
    }
    char where[512] = "";
    if (!same(want, have, where, sizeof where)) {
        char *h = json_dumps(have, JSON_COMPACT | JSON_SORT_KEYS);
        printf("FAIL %s: differs at%s\n  got %.400s\n", rel, where, h ? h : "?");
        free(h);
        return false;
    }
    return true;
}

static bool run_invalid(const char *dir, const char *rel)
{
    CL_AUTO(cl_str) *path = cl_strdupf("%s/%s", dir, rel);
    if (!path)
        return false;
    size_t len = 0;
    CL_AUTO(cl_str) *text = read_all(path, &len);
    if (!text) {
        printf("FAIL %s: cannot read the case\n", rel);
        return false;
    }
    struct cl_err err = {0};
    AUTO_JSON *have = cl_toml_parse_tagged(text, len, &err);
    if (have) {
        printf("FAIL %s: accepted\n", rel);
        return false;
    }
    if (err.msg[0] == '\0' || (err.code != CL_EPARSE && err.code != CL_ELIMIT)) {
        printf("FAIL %s: refused without a proper error (%s)\n", rel, cl_err_name(err.code));
        return false;
    }
    if (getenv("TOML_VERBOSE"))
        printf("ok %s: %s\n", rel, err.msg);
    return true;
}

int main(int argc, char **argv)
{
    const char *base = getenv("CLOISTER_VECTORS");
    if (!base || !*base)
        base = getenv("CLOISTER_VECTORS_DEFAULT");
    CL_AUTO(cl_str) *dir = NULL;
    if (argc > 1)
        dir = cl_strdupf("%s", argv[1]);
    else if (base && *base)
        dir = cl_strdupf("%s/toml-test/tests", base);
    else {
        printf("SKIP: no vectors (set CLOISTER_VECTORS)\n");
        return 77;
    }
    CL_AUTO(cl_str) *list = dir ? cl_strdupf("%s/files-toml-1.0.0", dir) : NULL;
    if (!list)
        return 1;
    FILE *f = fopen(list, "r");
    if (!f) {
        printf("SKIP: %s: %s\n", list, strerror(errno));
        return 77;
    }
    unsigned pass = 0, fail = 0, nvalid = 0, ninvalid = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t n = strlen(line);
        if (n < 6 || strcmp(line + n - 5, ".toml") != 0)
            continue; /* valid/X.json lines go with their .toml */
        bool ok;
        if (strncmp(line, "valid/", 6) == 0) {
            nvalid++;
            ok = run_valid(dir, line);
        } else if (strncmp(line, "invalid/", 8) == 0) {
            ninvalid++;
            ok = run_invalid(dir, line);
        } else {
            continue;
        }
        if (ok)
            pass++;
        else
            fail++;
    }
    fclose(f);
    printf("toml-test 1.0.0: %u/%u passed (%u valid, %u invalid cases), %u failed\n", pass,
           pass + fail, nvalid, ninvalid, fail);
    if (pass + fail == 0)
        return 77;
    return fail ? 1 : 0;
}
