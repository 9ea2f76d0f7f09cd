/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The table-driven configuration reader (cfg.h): rows of {key, type, offset, bounds, flags}
 * walked over a parsed TOML document, refusals named by dotted path and file:line, the
 * effective configuration and the --check file checks from the same rows.
 */
#include "toml/cfg.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- file:line of a dotted key path ---- */

/* Header of a line "[a.b]" / "[[a]]" → "a.b" (spaces and quotes dropped) into out. */
static void header_name(const char *s, size_t n, char *out, size_t cap, bool *array)
{
    size_t o = 0, i = 0;
    *array = n > 1 && s[1] == '[';
    for (i = *array ? 2 : 1; i < n && s[i] != ']' && o + 1 < cap; i++)
        if (!isspace((unsigned char)s[i]) && s[i] != '"')
            out[o++] = s[i];
    out[o] = 0;
}

/* Drops "[N]" parts: "plugins[1].type" → "plugins.type"; *idx = the first index (or -1). */
static void strip_index(const char *in, char *out, size_t cap, long *idx)
{
    size_t o = 0;
    *idx = -1;
    for (const char *p = in; *p && o + 1 < cap; p++) {
        if (*p == '[') {
            if (*idx < 0)
                *idx = strtol(p + 1, NULL, 10);
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
            continue;
        }
        out[o++] = *p;
    }
    out[o] = 0;
}

/* State of one scan for a wanted path. */
struct scan {
    char hdr[CL_CFG_MAX_PATH];
    char arrname[CL_CFG_MAX_PATH];
    long occ; /* occurrence of the current [[array]] header */
};

/* Does the line p[0..n) (already past leading blanks) name want? Updates the header state. */
static bool line_names(struct scan *s, const char *p, size_t n, const char *want, long want_idx)
{
    if (n && p[0] == '[') {
        bool arr;
        header_name(p, n, s->hdr, sizeof s->hdr, &arr);
        if (arr) {
            if (strcmp(s->arrname, s->hdr) != 0) {
                snprintf(s->arrname, sizeof s->arrname, "%s", s->hdr);
                s->occ = -1;
            }
            s->occ++;
        }
        bool idx_ok = want_idx < 0 || strncmp(s->hdr, s->arrname, strlen(s->arrname)) != 0 ||
                      s->occ == want_idx;
        return strcmp(s->hdr, want) == 0 && idx_ok;
    }
    if (!n || p[0] == '#')
        return false;
    char full[2 * CL_CFG_MAX_PATH], lhs[CL_CFG_MAX_PATH];
    size_t o = 0, i = 0;
    for (; i < n && p[i] != '=' && o + 1 < sizeof lhs; i++)
        if (!isspace((unsigned char)p[i]) && p[i] != '"')
            lhs[o++] = p[i];
    lhs[o] = 0;
    if (i >= n || !o)
        return false;
    snprintf(full, sizeof full, "%s%s%s", s->hdr, s->hdr[0] ? "." : "", lhs);
    bool idx_ok = want_idx < 0 || !s->arrname[0] || s->occ == want_idx;
    return strcmp(full, want) == 0 && idx_ok;
}

/* The 1-based line of a dotted key path in the text, or of its nearest enclosing table that
 * appears; 0 when nothing matches. Good for the usual layouts (headers, dotted keys, one key
 * per line); an inline table's member reports the line of the key holding the table. */
static unsigned key_line(const char *text, size_t len, const char *path)
{
    char want[CL_CFG_MAX_PATH];
    long want_idx;
    strip_index(path, want, sizeof want, &want_idx);
    while (want[0] && text) {
        struct scan s = {.occ = -1};
        unsigned line = 1;
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), i = 0;
            while (i < n && isspace((unsigned char)p[i]))
                i++;
            if (line_names(&s, p + i, n - i, want, want_idx))
                return line;
            line++;
            p = nl ? nl + 1 : end;
        }
        char *dot = strrchr(want, '.');
        if (!dot)
            break;
        *dot = 0;
    }
    return 0;
}

/* ---- refusals ---- */

void cl_cfg_begin(struct cl_cfg *c, const char *who, const char *file, const char *text, size_t len)
{
    memset(c, 0, sizeof *c);
    c->who = who;
    c->file = file;
    c->text = text;
    c->len = len;
}

void cl_cfg_refuse(struct cl_cfg *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = c->file ? c->file : "<config>";
    /* each lookup scans the file: capped so that a file of many bad keys stays linear */
    unsigned line = c->nbad < CL_CFG_MAX_REFUSALS_LOGGED ? key_line(c->text, c->len, path) : 0;
    char full[768];
    if (line)
        snprintf(full, sizeof full, "%s:%u: %s", file, line, msg);
    else
        snprintf(full, sizeof full, "%s: %s", file, msg);
    if (c->nbad < CL_CFG_MAX_REFUSALS_LOGGED)
        cl_error("%s: %s", c->who, full);
    if (c->nbad++ == 0)
        cl_err_set(&c->first, CL_EINVAL, "%s: %s", c->who, full);
}

int cl_cfg_finish(struct cl_cfg *c, int rc, struct cl_err *err)
{
    if (!c->nbad)
        return rc;
    /* the refusals come first: exit 2 naming the keys, whatever else failed after them */
    if (rc < 0 && err)
        cl_error("%s: also: %s", c->who, err->msg);
    if (err) {
        *err = c->first;
        if (c->nbad > 1)
            cl_err_prefix(err, "%u keys refused, the first", c->nbad);
    }
    return CL_EINVAL;
}

void cl_cfg_join(char *out, size_t cap, const char *where, const char *key)
{
    snprintf(out, cap, "%s%s%s", where, *where ? "." : "", key);
}

/* ---- reading ---- */

static void *at(void *base, size_t off)
{
    return (char *)base + off;
}

static const void *cat(const void *base, size_t off)
{
    return (const char *)base + off;
}

static int set_str(char **dst, const char *s, struct cl_err *err)
{
    char *d = strdup(s);
    if (!d)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    free(*dst);
    *dst = d;
    return 0;
}

static void store_int(void *dst, unsigned size, int64_t v)
{
    if (size == 1) {
        uint8_t x = (uint8_t)v;
        memcpy(dst, &x, 1);
    } else if (size == 2) {
        uint16_t x = (uint16_t)v;
        memcpy(dst, &x, 2);
    } else if (size == 4) {
        int32_t x = (int32_t)v;
        memcpy(dst, &x, 4);
    } else {
        memcpy(dst, &v, 8);
    }
}

static int64_t load_int(const void *src, unsigned size)
{
    if (size == 1)
        return *(const uint8_t *)src;
    if (size == 2) {
        uint16_t x;
        memcpy(&x, src, 2);
        return x;
    }
    if (size == 4) {
        int32_t x;
        memcpy(&x, src, 4);
        return x;
    }
    int64_t x;
    memcpy(&x, src, 8);
    return x;
}

static int read_strs(const struct cl_cfg_field *f, const json_t *v, const char *path, void *base,
                     const char *who, struct cl_err *err)
{
    if (!json_is_array(v))
        return cl_err_set(err, CL_EINVAL, "%s: '%s' must be an array of at most %lld strings", who,
                          path, (long long)f->max);
    size_t n = json_array_size(v);
    if (n > (size_t)f->max)
        return cl_err_set(err, CL_ELIMIT, "%s: '%s' must be an array of at most %lld strings", who,
                          path, (long long)f->max);
    char **arr = at(base, f->off);
    size_t *count = NULL;
    if (f->flags & CL_CFG_NULLTERM) {
        char ***pp = at(base, f->off);
        for (size_t i = 0; *pp && (*pp)[i]; i++)
            free((*pp)[i]);
        free(*pp);
        if (!(*pp = calloc(n + 1, sizeof(char *))))
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        arr = *pp;
    } else {
        count = at(base, f->off_n);
        for (size_t i = 0; i < *count; i++)
            free(arr[i]);
        *count = 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return cl_err_set(err, CL_EINVAL, "%s: %s[%zu] must be a string", who, path, i);
        if (!(arr[i] = strdup(json_string_value(e))))
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        if (count)
            (*count)++;
    }
    return 0;
}

static bool is_off(const json_t *v)
{
    return (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0) || json_is_false(v);
}

static int read_enum(struct cl_cfg *c, const struct cl_cfg_field *f, const json_t *v,
                     const char *path, void *base, struct cl_err *err)
{
    if (!json_is_string(v))
        return cl_err_set(err, CL_EINVAL, "%s: '%s' must be a string", c->who, path);
    const char *s = json_string_value(v);
    for (size_t i = 0; f->choices[i]; i++)
        if (strcmp(f->choices[i], s) == 0)
            return set_str(at(base, f->off), s, err);
    cl_cfg_refuse(c, path, "%s = \"%.128s\" %s", path, s, f->why ? f->why : "is not supported");
    return 0;
}

/* One present value of row f at dotted path. */
static int read_one(struct cl_cfg *c, const struct cl_cfg_field *f, const json_t *v,
                    const char *path, void *base, struct cl_err *err)
{
    switch (f->type) {
    case CL_CFG_STR:
        if (!json_is_string(v))
            return cl_err_set(err, CL_EINVAL, "%s: '%s' must be a string", c->who, path);
        return set_str(at(base, f->off), json_string_value(v), err);
    case CL_CFG_BOOL:
        if (!json_is_boolean(v))
            return cl_err_set(err, CL_EINVAL, "%s: '%s' must be true or false", c->who, path);
        *(bool *)at(base, f->off) = json_is_true(v);
        return 0;
    case CL_CFG_INT:
        if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
            return cl_err_set(err, CL_EINVAL, "%s: '%s' must be an integer in %lld..%lld", c->who,
                              path, (long long)f->min, (long long)f->max);
        store_int(at(base, f->off), f->size, json_integer_value(v) * (f->scale ? f->scale : 1));
        return 0;
    case CL_CFG_ENUM:
        return read_enum(c, f, v, path, base, err);
    case CL_CFG_STRS:
        return read_strs(f, v, path, base, c->who, err);
    case CL_CFG_TABLE:
        if (!json_is_object(v))
            return cl_err_set(err, CL_EINVAL, "%s: '%s' must be a table", c->who, path);
        return cl_cfg_read(c, v, path, f->sub, base, err);
    case CL_CFG_FUNC:
        return f->fn(c, v, path, base, err);
    case CL_CFG_REFUSED:
        if (!is_off(v))
            cl_cfg_refuse(c, path, "'%s' is not supported: %s", path, f->why);
        return 0;
    case CL_CFG_IGNORED:
        cl_warn("%s: '%s' is ignored: %s", c->who, path, f->why);
        return 0;
    case CL_CFG_KNOWN:
    case CL_CFG_END:
        break;
    }
    return 0;
}

int cl_cfg_read(struct cl_cfg *c, const json_t *tbl, const char *where,
                const struct cl_cfg_field *fields, void *base, struct cl_err *err)
{
    char path[CL_CFG_MAX_PATH];
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)tbl, k, v)
    {
        const struct cl_cfg_field *f = fields;
        while (f->key && strcmp(f->key, k) != 0)
            f++;
        if (!f->key) {
            cl_cfg_join(path, sizeof path, where, k);
            cl_cfg_refuse(c, path, "'%s' is not a key Cloister supports", path);
        }
    }
    for (const struct cl_cfg_field *f = fields; f->key; f++) {
        cl_cfg_join(path, sizeof path, where, f->key);
        v = json_object_get(tbl, f->key);
        if (!v || json_is_null(v)) { /* null: a JSON file's way of leaving a key out */
            if (f->flags & CL_CFG_REQUIRED)
                return cl_err_set(err, CL_EINVAL, "%s: '%s' is missing", c->who, path);
            continue;
        }
        int rc = read_one(c, f, v, path, base, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the effective configuration ---- */

/* s with the value of every "pin-value=" query attribute (up to the next '&' or the end)
 * shown as "<redacted>". */
static json_t *pin_redacted(const char *s)
{
    static const char key[] = "pin-value=";
    const char *q = strchr(s, '?');
    if (!q || !strstr(q, key))
        return json_string(s);
    size_t cap = strlen(s) + 1, o = 0;
    for (const char *p = q; (p = strstr(p, key)); p += sizeof key - 1)
        cap += sizeof "<redacted>";
    CL_AUTO(cl_str) *out = malloc(cap);
    if (!out)
        return NULL;
    const char *p = s;
    for (const char *hit; (hit = strstr(p > q ? p : q, key)); p = hit + strcspn(hit, "&")) {
        hit += sizeof key - 1;
        o += (size_t)snprintf(out + o, cap - o, "%.*s<redacted>", (int)(hit - p), p);
    }
    snprintf(out + o, cap - o, "%s", p);
    return json_string(out);
}

static json_t *str_value(const struct cl_cfg_field *f, const char *s)
{
    if (s && (f->flags & CL_CFG_SECRET))
        return json_string("<redacted>");
    if (s && (f->flags & CL_CFG_URI_PIN))
        return pin_redacted(s);
    if (s)
        return json_string(s);
    return f->dflt ? json_string(f->dflt) : json_null();
}

static json_t *effective_one(const struct cl_cfg_field *f, const void *base)
{
    switch (f->type) {
    case CL_CFG_STR:
    case CL_CFG_ENUM:
        return str_value(f, *(char *const *)cat(base, f->off));
    case CL_CFG_BOOL:
        return json_boolean(*(const bool *)cat(base, f->off));
    case CL_CFG_INT: {
        int64_t n = load_int(cat(base, f->off), f->size) / (f->scale ? f->scale : 1);
        return json_integer(n ? n : f->dint);
    }
    case CL_CFG_STRS: {
        json_t *a = json_array();
        char *const *arr = cat(base, f->off);
        size_t n = 0;
        if (f->flags & CL_CFG_NULLTERM) {
            arr = *(char *const *const *)cat(base, f->off);
            while (arr && arr[n])
                n++;
        } else {
            n = *(const size_t *)cat(base, f->off_n);
        }
        for (size_t i = 0; a && i < n; i++)
            json_array_append_new(a, str_value(f, arr[i]));
        return a;
    }
    case CL_CFG_TABLE:
        return cl_cfg_effective(f->sub, base);
    case CL_CFG_FUNC:
        return f->show ? f->show(base) : NULL;
    default:
        return NULL;
    }
}

json_t *cl_cfg_effective(const struct cl_cfg_field *fields, const void *base)
{
    json_t *o = json_object();
    for (const struct cl_cfg_field *f = fields; o && f->key; f++) {
        if (f->flags & CL_CFG_HIDDEN)
            continue;
        json_t *v = effective_one(f, base);
        if (v && json_object_set_new(o, f->key, v) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- --check: the files the configuration names ---- */

static int check_one(const char *who, const struct cl_cfg_field *f, const char *path,
                     const char *val, size_t max, cl_cfg_pem_fn pem, struct cl_err *err)
{
    if (!val)
        return 0;
    if (f->flags & CL_CFG_FILE) {
        /* a URI: file://path is a file; another scheme (kbs://, https://) is fetched later */
        if ((f->flags & CL_CFG_URI) && strncmp(val, "file://", 7) == 0)
            val += 7;
        else if ((f->flags & CL_CFG_URI) && strstr(val, "://"))
            return 0;
        CL_AUTO(cl_bytes) *b = cl_file_read(val, max, NULL, err);
        if (!b)
            return cl_err_prefix(err, "%s: '%s'", who, path);
    }
    if ((f->flags & CL_CFG_PEM) && pem && pem(val, strlen(val), err) < 0)
        return cl_err_prefix(err, "%s: '%s'", who, path);
    return 0;
}

int cl_cfg_check_files(const char *who, const struct cl_cfg_field *fields, const void *base,
                       const char *where, size_t max, cl_cfg_pem_fn pem, struct cl_err *err)
{
    char path[CL_CFG_MAX_PATH];
    for (const struct cl_cfg_field *f = fields; f->key; f++) {
        cl_cfg_join(path, sizeof path, where, f->key);
        if (f->type == CL_CFG_TABLE &&
            cl_cfg_check_files(who, f->sub, base, path, max, pem, err) < 0)
            return err->code;
        if (!(f->flags & (CL_CFG_FILE | CL_CFG_PEM)))
            continue;
        if (f->type == CL_CFG_STR &&
            check_one(who, f, path, *(char *const *)cat(base, f->off), max, pem, err) < 0)
            return err->code;
        if (f->type != CL_CFG_STRS)
            continue;
        char *const *arr = cat(base, f->off);
        size_t n = 0;
        if (f->flags & CL_CFG_NULLTERM) {
            arr = *(char *const *const *)cat(base, f->off);
            while (arr && arr[n])
                n++;
        } else {
            n = *(const size_t *)cat(base, f->off_n);
        }
        for (size_t i = 0; i < n; i++) {
            char ip[CL_CFG_MAX_PATH + 24];
            snprintf(ip, sizeof ip, "%s[%zu]", path, i);
            if (check_one(who, f, ip, arr[i], max, pem, err) < 0)
                return err->code;
        }
    }
    return 0;
}
