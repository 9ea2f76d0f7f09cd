/* SPDX-License-Identifier: Apache-2.0 */
/* jansson helpers: bounded parsing and typed member access whose errors name the field. */
#include "json/json.h"

#include <string.h>

void cl_auto_json_t(json_t **p)
{
    json_decref(*p);
    *p = NULL;
}

/* Nesting depth of a JSON text, computed without parsing (strings skipped). Malformed text
 * may get any answer here; jansson rejects it afterwards. */
static size_t json_depth(const char *buf, size_t len, size_t cap)
{
    size_t depth = 0, maxd = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > maxd) {
                maxd = depth;
                if (maxd > cap)
                    return maxd;
            }
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return maxd;
}

json_t *cl_json_parse(const char *buf, size_t len, size_t max_depth, struct cl_err *err)
{
    if (!buf) {
        cl_err_set(err, CL_EPARSE, "json: no input");
        return NULL;
    }
    if (json_depth(buf, len, max_depth) > max_depth) {
        cl_err_set(err, CL_ELIMIT, "json: nesting deeper than %zu", max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        cl_err_set(err, CL_EPARSE, "json: %s at line %d column %d", je.text, je.line, je.column);
        return NULL;
    }
    return v;
}

static int get_typed(const json_t *obj, const char *key, json_type t, const char *tname,
                     json_t **out, struct cl_err *err)
{
    if (!json_is_object(obj))
        return cl_err_set(err, CL_EPARSE, "'%s': parent is not an object", key);
    json_t *v = json_object_get(obj, key);
    if (!v)
        return cl_err_set(err, CL_ENOTFOUND, "'%s' is missing", key);
    if (json_typeof(v) != t && !(t == JSON_TRUE && json_is_boolean(v)))
        return cl_err_set(err, CL_EPARSE, "'%s' must be %s", key, tname);
    *out = v;
    return 0;
}

int cl_json_get_str(const json_t *obj, const char *key, const char **out, struct cl_err *err)
{
    json_t *v = NULL;
    int rc = get_typed(obj, key, JSON_STRING, "a string", &v, err);
    if (rc < 0)
        return rc;
    *out = json_string_value(v);
    return 0;
}

int cl_json_opt_str(const json_t *obj, const char *key, const char **out, struct cl_err *err)
{
    if (json_is_object(obj) && !json_object_get(obj, key)) {
        *out = NULL;
        return 0;
    }
    return cl_json_get_str(obj, key, out, err);
}

int cl_json_get_obj(const json_t *obj, const char *key, json_t **out, struct cl_err *err)
{
    return get_typed(obj, key, JSON_OBJECT, "an object", out, err);
}

int cl_json_get_arr(const json_t *obj, const char *key, json_t **out, struct cl_err *err)
{
    return get_typed(obj, key, JSON_ARRAY, "an array", out, err);
}

int cl_json_get_int(const json_t *obj, const char *key, json_int_t *out, struct cl_err *err)
{
    json_t *v = NULL;
    int rc = get_typed(obj, key, JSON_INTEGER, "an integer", &v, err);
    if (rc < 0)
        return rc;
    *out = json_integer_value(v);
    return 0;
}

int cl_json_get_bool(const json_t *obj, const char *key, bool *out, struct cl_err *err)
{
    json_t *v = NULL;
    int rc = get_typed(obj, key, JSON_TRUE, "a boolean", &v, err);
    if (rc < 0)
        return rc;
    *out = json_is_true(v);
    return 0;
}

json_t *cl_json_pointer(json_t *doc, const char *ptr)
{
    if (!ptr || !*ptr)
        return doc;
    if (*ptr != '/')
        return NULL;
    json_t *cur = doc;
    const char *p = ptr;
    char tok[512];
    while (cur && *p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~') {
                if (*p == '0')
                    c = '~';
                else if (*p == '1')
                    c = '/';
                else
                    return NULL;
                p++;
            }
            if (n + 1 >= sizeof tok)
                return NULL;
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            uint64_t idx;
            if (n == 0 || (n > 1 && tok[0] == '0') ||
                cl_parse_u64(tok, 0, SIZE_MAX, &idx, "index", NULL) < 0)
                return NULL;
            cur = json_array_get(cur, (size_t)idx);
        } else {
            return NULL;
        }
    }
    return cur;
}
