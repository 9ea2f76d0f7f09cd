/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TOML document reader: lines, comments, keys, [table] and [[array]] headers, key/value
 * pairs, arrays and inline tables, built straight into a jansson tree. The redefinition rules
 * of TOML 1.0 need to know how each table came to be (by a header, implicitly, by dotted
 * keys, inline); jansson values carry no such data, so a pointer-keyed hash beside the tree
 * holds a few flags and the nesting depth of every table and array the parser made.
 *
 * Bounds: the input size is checked first; recursion happens only for nested arrays and
 * inline tables and stops at CL_TOML_MAX_DEPTH; every key lookup is a hash lookup, so the
 * work is linear in the input however the keys are arranged.
 */
#include "toml/priv.h"

#include <stdio.h>
#include <string.h>

/* ---- errors and scratch buffers ---- */

const char *cl_tp_show(const struct tp *p, size_t at, char out[16])
{
    if (at >= p->len)
        return "end of input";
    unsigned char c = (unsigned char)p->buf[at];
    if (c == '\n')
        return "a newline";
    if (c >= 0x20 && c < 0x7F)
        snprintf(out, 16, "'%c'", c);
    else if (c < 0x80)
        snprintf(out, 16, "U+%04X", c);
    else
        snprintf(out, 16, "byte 0x%02X", c);
    return out;
}

int cl_tp_fail_at(struct tp *p, size_t at, int code, const char *file, int line, const char *fmt,
                  ...)
{
    char msg[CL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Line and column are counted only here, once, on failure. Columns count characters. */
    if (at > p->len)
        at = p->len;
    unsigned lineno = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        unsigned char c = (unsigned char)p->buf[i];
        if (c == '\n')
            lineno++, col = 1;
        else if ((c & 0xC0) != 0x80)
            col++;
    }
    return cl_err_set_at(p->err, code, "toml", file, line, "line %u, column %u: %s", lineno, col,
                         msg);
}

int cl_tp_buf_put(struct tp *p, struct cl_tp_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
        size_t need, cap = b->cap ? b->cap : 256;
        if (!cl_add_ok(b->len, n, &need))
            return TP_FAIL(p, CL_ENOMEM, "out of memory");
        while (cap < need)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return TP_FAIL(p, CL_ENOMEM, "out of memory");
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* ---- what the parser knows about each table and array ---- */

static size_t slot_hash(const json_t *k, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)k;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & mask;
}

static struct cl_tp_slot *meta_get(const struct tp *p, const json_t *k)
{
    if (!p->capslots)
        return NULL;
    size_t mask = p->capslots - 1;
    for (size_t i = slot_hash(k, mask);; i = (i + 1) & mask) {
        if (p->slots[i].key == k)
            return &p->slots[i];
        if (!p->slots[i].key)
            return NULL;
    }
}

/* The slot of a container this parser made (every one is registered by new_container). Should
 * that ever not hold, the answer is a slot that refuses everything: frozen (nothing may be
 * added) and at the depth cap (nothing may nest), so the document fails instead of parsing
 * differently. Never NULL. */
static struct cl_tp_slot *meta_of(struct tp *p, const json_t *k)
{
    struct cl_tp_slot *s = meta_get(p, k);
    if (s)
        return s;
    p->lost = (struct cl_tp_slot){.key = k, .flags = TP_FROZEN, .depth = CL_TOML_MAX_DEPTH};
    return &p->lost;
}

static int meta_put(struct tp *p, const json_t *k, unsigned flags, unsigned depth)
{
    if (2 * (p->nslots + 1) > p->capslots) {
        size_t ncap = p->capslots ? 2 * p->capslots : 64;
        struct cl_tp_slot *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return TP_FAIL(p, CL_ENOMEM, "out of memory");
        for (size_t j = 0; j < p->capslots; j++) {
            if (!p->slots[j].key)
                continue;
            size_t i = slot_hash(p->slots[j].key, ncap - 1);
            while (ns[i].key)
                i = (i + 1) & (ncap - 1);
            ns[i] = p->slots[j];
        }
        free(p->slots);
        p->slots = ns;
        p->capslots = ncap;
    }
    size_t mask = p->capslots - 1, i = slot_hash(k, mask);
    while (p->slots[i].key)
        i = (i + 1) & mask;
    p->slots[i] = (struct cl_tp_slot){k, flags, depth};
    p->nslots++;
    return 0;
}

static int pending_add(struct tp *p, json_t *t, struct cl_tp_slot *s)
{
    if (p->npending == p->cappending) {
        size_t ncap = p->cappending ? 2 * p->cappending : 16;
        json_t **np = realloc(p->pending, ncap * sizeof *np);
        if (!np)
            return TP_FAIL(p, CL_ENOMEM, "out of memory");
        p->pending = np;
        p->cappending = ncap;
    }
    p->pending[p->npending++] = t;
    s->flags |= TP_PENDING;
    return 0;
}

/* A header closes the section: tables made or crossed by its dotted keys are now defined. */
static void pending_commit(struct tp *p)
{
    for (size_t i = 0; i < p->npending; i++) {
        struct cl_tp_slot *s = meta_of(p, p->pending[i]);
        s->flags = (s->flags & ~(unsigned)TP_PENDING) | TP_EXPLICIT;
    }
    p->npending = 0;
}

/* New container registered with flags at depth; *out borrowed from parent after insertion. */
static int new_container(struct tp *p, size_t at, bool array, unsigned flags, unsigned depth,
                         json_t **out)
{
    if (depth > CL_TOML_MAX_DEPTH)
        return TP_FAIL_AT(p, at, CL_ELIMIT, "tables and arrays nested deeper than %d",
                          CL_TOML_MAX_DEPTH);
    json_t *v = array ? json_array() : json_object();
    if (!v)
        return TP_FAIL_AT(p, at, CL_ENOMEM, "out of memory");
    int rc = meta_put(p, v, flags, depth);
    if (rc < 0) {
        json_decref(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* ---- lines ---- */

static bool at_end(const struct tp *p)
{
    return p->pos >= p->len;
}
static char cur(const struct tp *p)
{
    return p->pos < p->len ? p->buf[p->pos] : '\0';
}

static void skip_blanks(struct tp *p)
{
    while (p->pos < p->len && (p->buf[p->pos] == ' ' || p->buf[p->pos] == '\t'))
        p->pos++;
}

/* Length of a newline at p->pos (LF or CRLF), 0 if none. */
static size_t newline_len(const struct tp *p)
{
    if (cur(p) == '\n')
        return 1;
    if (p->len - p->pos >= 2 && p->buf[p->pos] == '\r' && p->buf[p->pos + 1] == '\n')
        return 2;
    return 0;
}

/* A comment runs to the end of the line and may not hold control characters but tab. */
static int skip_comment(struct tp *p)
{
    if (cur(p) != '#')
        return 0;
    for (p->pos++; p->pos < p->len; p->pos++) {
        unsigned char c = (unsigned char)p->buf[p->pos];
        if (c == '\n' || newline_len(p))
            return 0;
        if (c == '\r')
            return TP_FAIL(p, CL_EPARSE, "carriage return without line feed in a comment");
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return TP_FAIL(p, CL_EPARSE, "control character U+%04X in a comment", c);
    }
    return 0;
}

/* Blanks, an optional comment, then a newline or the end of the input. */
static int end_of_line(struct tp *p, const char *after)
{
    skip_blanks(p);
    int rc = skip_comment(p);
    if (rc < 0)
        return rc;
    if (at_end(p))
        return 0;
    size_t nl = newline_len(p);
    if (!nl) {
        char show[16];
        if (cur(p) == '\r')
            return TP_FAIL(p, CL_EPARSE, "carriage return without line feed");
        return TP_FAIL(p, CL_EPARSE, "expected a newline after %s, found %s", after,
                       cl_tp_show(p, p->pos, show));
    }
    p->pos += nl;
    return 0;
}

/* Inside arrays: blanks, newlines and comments in any number. */
static int skip_space_in_array(struct tp *p)
{
    for (;;) {
        skip_blanks(p);
        int rc = skip_comment(p);
        if (rc < 0)
            return rc;
        size_t nl = newline_len(p);
        if (!nl)
            return 0;
        p->pos += nl;
    }
}

/* ---- keys ---- */

static bool is_bare_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Formats key part i for a message: quoted, cut at 64 bytes, controls shown as '?'. */
static const char *show_key(const struct tp *p, const struct cl_tp_seg *s, char out[80])
{
    size_t n = s->len > 64 ? 64 : s->len, o = 0;
    while (n < s->len && n > 0 && ((unsigned char)p->kb.p[s->off + n] & 0xC0) == 0x80)
        n--; /* cut on a character boundary */
    out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p->kb.p[s->off + i];
        out[o++] = (char)(c < 0x20 || c == 0x7F ? '?' : c);
    }
    if (s->len > n)
        out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

/* Reads a key (bare, quoted, dotted) into p->segs, with the text pushed onto p->kb. */
static int read_key(struct tp *p)
{
    p->nseg = 0;
    for (;;) {
        if (p->nseg == CL_TOML_MAX_DEPTH)
            return TP_FAIL(p, CL_ELIMIT, "key with more than %d dotted parts", CL_TOML_MAX_DEPTH);
        size_t off = p->kb.len, at = p->pos;
        char c = cur(p);
        int rc;
        if (c == '"' || c == '\'') {
            /* in plain mode read_escape refuses \u0000, so keys never hold a NUL there */
            if ((rc = cl_tp_string(p, &p->kb, true)) < 0)
                return rc;
        } else if (!at_end(p) && is_bare_key_char((unsigned char)c)) {
            size_t s = p->pos;
            while (p->pos < p->len && is_bare_key_char((unsigned char)p->buf[p->pos]))
                p->pos++;
            if ((rc = cl_tp_buf_put(p, &p->kb, p->buf + s, p->pos - s)) < 0)
                return rc;
        } else {
            char show[16];
            return TP_FAIL(p, CL_EPARSE, "expected a key, found %s", cl_tp_show(p, p->pos, show));
        }
        p->segs[p->nseg++] = (struct cl_tp_seg){off, p->kb.len - off, at};
        skip_blanks(p);
        if (cur(p) != '.')
            return 0;
        p->pos++;
        skip_blanks(p);
    }
}

static json_t *get_seg(const struct tp *p, json_t *t, const struct cl_tp_seg *s)
{
    return json_object_getn(t, p->kb.p + s->off, s->len);
}

static int set_seg(struct tp *p, json_t *t, const struct cl_tp_seg *s, json_t *v)
{
    /* the text is valid UTF-8 (the whole input was checked, escapes are encoded by us) */
    if (json_object_setn_new_nocheck(t, p->kb.p + s->off, s->len, v) < 0)
        return TP_FAIL_AT(p, s->at, CL_ENOMEM, "out of memory");
    return 0;
}

/* ---- values ---- */

static int read_value(struct tp *p, unsigned depth, json_t **out);
static int read_keyval(struct tp *p, json_t *table, bool in_inline);

static int read_array(struct tp *p, unsigned depth, json_t **out)
{
    size_t start = p->pos;
    TP_AUTO_JSON *arr = NULL;
    int rc = new_container(p, start, true, TP_FROZEN, depth, &arr);
    if (rc < 0)
        return rc;
    p->pos++;
    for (;;) {
        if ((rc = skip_space_in_array(p)) < 0)
            return rc;
        if (cur(p) == ']' && !at_end(p))
            break;
        json_t *v = NULL;
        if ((rc = read_value(p, depth + 1, &v)) < 0)
            return rc;
        if (json_array_append_new(arr, v) < 0)
            return TP_FAIL(p, CL_ENOMEM, "out of memory");
        if ((rc = skip_space_in_array(p)) < 0)
            return rc;
        if (cur(p) == ',' && !at_end(p)) {
            p->pos++;
            continue;
        }
        if (cur(p) == ']' && !at_end(p))
            break;
        if (at_end(p))
            return TP_FAIL_AT(p, start, CL_EPARSE, "unterminated array");
        char show[16];
        return TP_FAIL(p, CL_EPARSE, "expected ',' or ']' in an array, found %s",
                       cl_tp_show(p, p->pos, show));
    }
    p->pos++;
    *out = CL_STEAL(arr);
    return 0;
}

/* { key = value, ... } on one line, no trailing comma; immutable once closed. */
static int read_inline_table(struct tp *p, unsigned depth, json_t **out)
{
    size_t start = p->pos;
    TP_AUTO_JSON *t = NULL;
    int rc = new_container(p, start, false, TP_TABLE, depth, &t);
    if (rc < 0)
        return rc;
    p->pos++;
    skip_blanks(p);
    if (cur(p) == '}' && !at_end(p)) {
        p->pos++;
    } else {
        for (;;) {
            if ((rc = read_keyval(p, t, true)) < 0)
                return rc;
            skip_blanks(p);
            char c = at_end(p) ? '\0' : cur(p);
            if (c == ',') {
                p->pos++;
                skip_blanks(p);
                if (cur(p) == '}' && !at_end(p))
                    return TP_FAIL(p, CL_EPARSE, "trailing comma in an inline table");
                continue;
            }
            if (c == '}') {
                p->pos++;
                break;
            }
            if (at_end(p))
                return TP_FAIL_AT(p, start, CL_EPARSE, "unterminated inline table");
            if (newline_len(p) || c == '#' || c == '\r')
                return TP_FAIL(p, CL_EPARSE, "an inline table must be on one line");
            char show[16];
            return TP_FAIL(p, CL_EPARSE, "expected ',' or '}' in an inline table, found %s",
                           cl_tp_show(p, p->pos, show));
        }
    }
    meta_of(p, t)->flags |= TP_FROZEN;
    *out = CL_STEAL(t);
    return 0;
}

static int read_value(struct tp *p, unsigned depth, json_t **out)
{
    char c = cur(p);
    if (at_end(p))
        return TP_FAIL(p, CL_EPARSE, "expected a value, found end of input");
    if (c == '"' || c == '\'') {
        size_t at = p->pos;
        p->sb.len = 0;
        int rc = cl_tp_string(p, &p->sb, false);
        if (rc < 0)
            return rc;
        json_t *v = p->tagged ? cl_tp_tag("string", p->sb.p ? p->sb.p : "", p->sb.len)
                              : json_stringn_nocheck(p->sb.p ? p->sb.p : "", p->sb.len);
        if (!v)
            return TP_FAIL_AT(p, at, CL_ENOMEM, "out of memory");
        *out = v;
        return 0;
    }
    if (c == '[')
        return read_array(p, depth, out);
    if (c == '{')
        return read_inline_table(p, depth, out);
    return cl_tp_scalar(p, out);
}

/* ---- key/value pairs, dotted keys ---- */

/* Follows dotted-key part s from table t, making a table if absent. Dotted keys may extend
 * only tables that dotted keys made, in this section or inside this inline table. */
static int dotted_step(struct tp *p, json_t *t, const struct cl_tp_seg *s, bool in_inline,
                       json_t **out)
{
    char name[80];
    json_t *child = get_seg(p, t, s);
    if (!child) {
        unsigned depth = meta_of(p, t)->depth + 1;
        int rc = new_container(p, s->at, false, TP_TABLE, depth, &child);
        if (rc < 0)
            return rc;
        if ((rc = set_seg(p, t, s, child)) < 0)
            return rc;
        if (!in_inline && (rc = pending_add(p, child, meta_of(p, child))) < 0)
            return rc;
        *out = child;
        return 0;
    }
    struct cl_tp_slot *m = meta_get(p, child);
    if (!m || !(m->flags & TP_TABLE))
        return TP_FAIL_AT(p, s->at, CL_EPARSE,
                          "key %s already holds a value, it cannot take dotted keys",
                          show_key(p, s, name));
    if (m->flags & TP_FROZEN)
        return TP_FAIL_AT(p, s->at, CL_EPARSE, "cannot add keys to inline table %s",
                          show_key(p, s, name));
    if (m->flags & TP_EXPLICIT)
        return TP_FAIL_AT(p, s->at, CL_EPARSE,
                          "table %s is already defined; dotted keys cannot extend it",
                          show_key(p, s, name));
    if (!in_inline && !(m->flags & TP_PENDING)) {
        int rc = pending_add(p, child, m);
        if (rc < 0)
            return rc;
    }
    *out = child;
    return 0;
}

static int read_keyval(struct tp *p, json_t *table, bool in_inline)
{
    size_t mark = p->kb.len;
    int rc = read_key(p);
    if (rc < 0)
        return rc;
    if (cur(p) != '=' || at_end(p)) {
        char show[16];
        return TP_FAIL(p, CL_EPARSE, "expected '=' after a key, found %s",
                       cl_tp_show(p, p->pos, show));
    }
    p->pos++;
    skip_blanks(p);
    json_t *parent = table;
    for (size_t i = 0; i + 1 < p->nseg; i++)
        if ((rc = dotted_step(p, parent, &p->segs[i], in_inline, &parent)) < 0)
            return rc;
    /* p->segs is reused by nested inline tables; the last part's text stays on p->kb */
    struct cl_tp_seg last = p->segs[p->nseg - 1];
    if (get_seg(p, parent, &last)) {
        char name[80];
        return TP_FAIL_AT(p, last.at, CL_EPARSE, "key %s is defined twice",
                          show_key(p, &last, name));
    }
    json_t *v = NULL;
    if ((rc = read_value(p, meta_of(p, parent)->depth + 1, &v)) < 0)
        return rc;
    if ((rc = set_seg(p, parent, &last, v)) < 0)
        return rc;
    p->kb.len = mark;
    return 0;
}

/* ---- [table] and [[array of tables]] ---- */

static int read_header(struct tp *p, json_t *root, json_t **current)
{
    size_t start = p->pos;
    bool aot = p->len - p->pos >= 2 && p->buf[p->pos + 1] == '[';
    p->pos += aot ? 2 : 1;
    skip_blanks(p);
    p->kb.len = 0;
    int rc = read_key(p);
    if (rc < 0)
        return rc;
    if (cur(p) != ']' || at_end(p) || (aot && (p->len - p->pos < 2 || p->buf[p->pos + 1] != ']'))) {
        char show[16];
        return TP_FAIL(p, CL_EPARSE, "expected '%s' to close the table header, found %s",
                       aot ? "]]" : "]", cl_tp_show(p, p->pos, show));
    }
    p->pos += aot ? 2 : 1;
    pending_commit(p);

    char name[80];
    json_t *t = root;
    for (size_t i = 0; i + 1 < p->nseg; i++) {
        const struct cl_tp_seg *s = &p->segs[i];
        unsigned depth = meta_of(p, t)->depth + 1;
        json_t *child = get_seg(p, t, s);
        if (!child) {
            if ((rc = new_container(p, s->at, false, TP_TABLE, depth, &child)) < 0 ||
                (rc = set_seg(p, t, s, child)) < 0)
                return rc;
            t = child;
            continue;
        }
        struct cl_tp_slot *m = meta_get(p, child);
        if (m && (m->flags & TP_AOT)) {
            t = json_array_get(child, json_array_size(child) - 1);
            continue;
        }
        if (!m || (m->flags & TP_FROZEN) || !(m->flags & TP_TABLE))
            return TP_FAIL_AT(p, s->at, CL_EPARSE, "key %s is %s, a header cannot add to it",
                              show_key(p, s, name),
                              !m                      ? "a value"
                              : (m->flags & TP_TABLE) ? "an inline table"
                                                      : "an array");
        t = child;
    }

    const struct cl_tp_seg *s = &p->segs[p->nseg - 1];
    unsigned depth = meta_of(p, t)->depth + 1;
    json_t *child = get_seg(p, t, s);
    struct cl_tp_slot *m = child ? meta_get(p, child) : NULL;
    if (!aot) {
        if (!child) {
            if ((rc = new_container(p, s->at, false, TP_TABLE | TP_EXPLICIT, depth, &child)) < 0 ||
                (rc = set_seg(p, t, s, child)) < 0)
                return rc;
        } else if (m && (m->flags & TP_TABLE) && !(m->flags & (TP_FROZEN | TP_EXPLICIT))) {
            m->flags |= TP_EXPLICIT; /* made implicitly by an earlier [a.b.c], defined now */
        } else {
            return TP_FAIL_AT(p, start, CL_EPARSE, "table %s is %s", show_key(p, s, name),
                              !m                       ? "already a value"
                              : (m->flags & TP_AOT)    ? "an array of tables, not a table"
                              : !(m->flags & TP_TABLE) ? "already an array"
                              : (m->flags & TP_FROZEN) ? "an inline table and cannot be redefined"
                                                       : "defined twice");
        }
        *current = child;
        return 0;
    }
    if (!child) {
        if ((rc = new_container(p, s->at, true, TP_AOT | TP_EXPLICIT, depth, &child)) < 0 ||
            (rc = set_seg(p, t, s, child)) < 0)
            return rc;
    } else if (!m || !(m->flags & TP_AOT)) {
        return TP_FAIL_AT(p, start, CL_EPARSE, "array of tables %s: the key is %s",
                          show_key(p, s, name),
                          !m                      ? "already a value"
                          : (m->flags & TP_TABLE) ? "already a table"
                                                  : "a static array, which cannot be extended");
    }
    json_t *elem = NULL;
    if ((rc = new_container(p, s->at, false, TP_TABLE, meta_of(p, child)->depth + 1, &elem)) < 0)
        return rc;
    if (json_array_append_new(child, elem) < 0)
        return TP_FAIL_AT(p, start, CL_ENOMEM, "out of memory");
    *current = elem;
    return 0;
}

/* ---- document ---- */

static int read_document(struct tp *p, json_t *root)
{
    json_t *current = root;
    if (p->len >= 3 && memcmp(p->buf, "\xEF\xBB\xBF", 3) == 0)
        p->pos = 3; /* a byte order mark may open the file */
    while (!at_end(p)) {
        skip_blanks(p);
        char c = cur(p);
        int rc = 0;
        const char *what = "a comment";
        if (at_end(p))
            break;
        if (c == '[') {
            rc = read_header(p, root, &current);
            what = "a table header";
        } else if (c != '#' && c != '\n' && c != '\r') {
            p->kb.len = 0;
            rc = read_keyval(p, current, false);
            what = "a key/value pair";
        }
        if (rc < 0)
            return rc;
        if ((rc = end_of_line(p, what)) < 0)
            return rc;
    }
    return 0;
}

static json_t *parse(const char *buf, size_t len, bool tagged, struct cl_err *err)
{
    if (!buf) {
        cl_err_stage(err, CL_EINVAL, "toml", "toml: no input");
        return NULL;
    }
    if (len > CL_TOML_MAX_INPUT) {
        cl_err_stage(err, CL_ELIMIT, "toml", "toml: input of %zu bytes is larger than %u", len,
                     CL_TOML_MAX_INPUT);
        return NULL;
    }
    struct tp p = {.buf = buf, .len = len, .tagged = tagged, .err = err};
    /* both scratch buffers exist from the start, so that key and string text never sit at NULL */
    p.sb.p = malloc(p.sb.cap = 256);
    p.kb.p = malloc(p.kb.cap = 256);
    if (!p.sb.p || !p.kb.p) {
        free(p.sb.p);
        free(p.kb.p);
        cl_err_stage(err, CL_ENOMEM, "toml", "toml: out of memory");
        return NULL;
    }
    json_t *root = NULL;
    int rc = 0;
    size_t bad = cl_tp_utf8_check(buf, len);
    if (bad != len)
        rc = TP_FAIL_AT(&p, bad, CL_EPARSE, "invalid UTF-8 (byte 0x%02X)", (unsigned char)buf[bad]);
    if (rc == 0)
        rc = new_container(&p, 0, false, TP_TABLE | TP_EXPLICIT, 1, &root);
    if (rc == 0)
        rc = read_document(&p, root);
    free(p.sb.p);
    free(p.kb.p);
    free(p.slots);
    free(p.pending);
    if (rc < 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *cl_toml_parse(const char *buf, size_t len, struct cl_err *err)
{
    return parse(buf, len, false, err);
}

json_t *cl_toml_parse_tagged(const char *buf, size_t len, struct cl_err *err)
{
    return parse(buf, len, true, err);
}

json_t *cl_toml_load_file(const char *path, struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *data = cl_file_read(path, CL_TOML_MAX_INPUT, &len, err);
    if (!data)
        return NULL;
    json_t *v = cl_toml_parse((const char *)data, len, err);
    if (!v)
        cl_err_prefix(err, "%s", path);
    return v;
}
