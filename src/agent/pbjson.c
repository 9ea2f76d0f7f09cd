// SPDX-License-Identifier: Apache-2.0
/*
 * The generic walk between protobuf-c messages and the Kata agent's serde JSON (pbjson.h has
 * the mapping). Two directions over the same descriptors: pb → JSON builds the policy input of
 * every request, JSON → pb lets agent-ctl and the tests send requests written as JSON.
 *
 * All message memory (unpacked or built) comes from one allocator that prefixes each block
 * with its size and, while unpacking host bytes, charges a budget: protobuf-c alone would
 * spend about fifty bytes of structure per two bytes of a 4 MiB frame of empty submessages.
 */
#include "pbjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- allocator ---- */

struct budget {
    size_t used, cap;
    bool exceeded;
};

/* 16 bytes keep the user block aligned for any member type. */
#define HDR 16

static void *pb_alloc(void *data, size_t size)
{
    struct budget *b = data;
    if (size > SIZE_MAX - HDR)
        return NULL;
    if (b) {
        if (size + HDR > b->cap - b->used) {
            b->exceeded = true;
            return NULL;
        }
        b->used += size + HDR;
    }
    uint8_t *p = malloc(size + HDR);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    return p + HDR;
}

static void pb_free(void *data, void *ptr)
{
    if (ptr)
        free((uint8_t *)ptr - HDR);
}

static void *pb_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = pb_alloc(NULL, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

ProtobufCMessage *cl_agent_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                     size_t len, struct cl_err *err)
{
    struct budget b = {0, CL_AGENT_MAX_UNPACK_MEM, false};
    ProtobufCAllocator a = {pb_alloc, pb_free, &b};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, len, buf);
    if (!m && b.exceeded)
        return cl_err_stage(err, CL_ELIMIT, CL_AGENT_STAGE_DECODE,
                            "%s: unpacking needs more than %u bytes (CL_AGENT_MAX_UNPACK_MEM)",
                            d->name, CL_AGENT_MAX_UNPACK_MEM),
               NULL;
    if (!m)
        return cl_err_stage(err, CL_EPARSE, CL_AGENT_STAGE_DECODE,
                            "%s: malformed protobuf (%zu bytes)", d->name, len),
               NULL;
    return m;
}

void cl_agent_pb_free(ProtobufCMessage *m)
{
    ProtobufCAllocator a = {pb_alloc, pb_free, NULL};
    if (m)
        protobuf_c_message_free_unpacked(m, &a);
}

/* ---- names ---- */

/* Rust keywords that rust-protobuf suffixes with "_" (the ones a proto field could be). */
static const char *const rust_keywords[] = {
    "as",    "async",  "await", "box",  "break",  "const", "continue", "crate", "dyn",    "else",
    "enum",  "extern", "false", "fn",   "for",    "if",    "impl",     "in",    "let",    "loop",
    "match", "mod",    "move",  "mut",  "pub",    "ref",   "return",   "self",  "static", "struct",
    "super", "trait",  "true",  "type", "unsafe", "use",   "where",    "while",
};

static const char *const rust_keyword_keys[] = {
    "as_",   "async_", "await_",  "box_",    "break_",  "const_",  "continue_", "crate_",
    "dyn_",  "else_",  "enum_",   "extern_", "false_",  "fn_",     "for_",      "if_",
    "impl_", "in_",    "let_",    "loop_",   "match_",  "mod_",    "move_",     "mut_",
    "pub_",  "ref_",   "return_", "self_",   "static_", "struct_", "super_",    "trait_",
    "true_", "type_",  "unsafe_", "use_",    "where_",  "while_",
};

const char *cl_agent_pb_json_key(const char *field_name)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(rust_keywords); i++)
        if (strcmp(field_name, rust_keywords[i]) == 0)
            return rust_keyword_keys[i];
    return field_name;
}

/* Real oneofs (not proto3 `optional`): protobuf-c keeps only the member, serde keys the
 * value by the oneof's name and wraps the member in an object. */
static const struct {
    const char *message, *member, *oneof;
} real_oneofs[] = {
    {"grpc.LinuxSyscall", "errnoret", "ErrnoRet"},
};

static const char *real_oneof_name(const ProtobufCMessageDescriptor *d,
                                   const ProtobufCFieldDescriptor *f)
{
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    for (size_t i = 0; i < CL_ARRAY_LEN(real_oneofs); i++)
        if (strcmp(d->name, real_oneofs[i].message) == 0 &&
            strcmp(f->name, real_oneofs[i].member) == 0)
            return real_oneofs[i].oneof;
    return NULL;
}

/* protobuf-c has no map type: a map is a repeated nested "<Name>Entry" message {key = 1,
 * value = 2}. */
static bool is_map_field(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t sl = strlen(e->short_name), pl = strlen(e->package_name);
    if (e->n_fields != 2 || sl < 5 || strcmp(e->short_name + sl - 5, "Entry") != 0)
        return false;
    /* nested: "<package>.<Outer>.<Name>Entry" */
    const char *rest = e->name + (pl ? pl + 1 : 0);
    if (strlen(e->name) < pl || !strchr(rest, '.'))
        return false;
    return e->fields[0].id == 1 && strcmp(e->fields[0].name, "key") == 0 && e->fields[1].id == 2 &&
           strcmp(e->fields[1].name, "value") == 0;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

#define MEMBER(m, off) ((uint8_t *)(m) + (off))
#define CMEMBER(m, off) ((const uint8_t *)(m) + (off))

/* ---- protobuf → JSON ---- */

struct p2j {
    size_t nodes;
    struct cl_err *err;
};

static json_t *node(struct p2j *s, json_t *v, const char *field)
{
    if (!v) {
        cl_err_stage(s->err, CL_ENOMEM, CL_AGENT_STAGE_JSON, "%s: out of memory", field);
        return NULL;
    }
    if (++s->nodes > CL_AGENT_MAX_JSON_NODES) {
        json_decref(v);
        cl_err_stage(s->err, CL_ELIMIT, CL_AGENT_STAGE_JSON,
                     "%s: more than %u JSON values (CL_AGENT_MAX_JSON_NODES)", field,
                     CL_AGENT_MAX_JSON_NODES);
        return NULL;
    }
    return v;
}

static json_t *msg_to_json(struct p2j *s, const ProtobufCMessage *m);

static json_t *value_to_json(struct p2j *s, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return node(s, json_integer(*(const int32_t *)p), f->name);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return node(s, json_integer(*(const uint32_t *)p), f->name);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return node(s, json_integer(*(const int64_t *)p), f->name);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        return node(s, v > INT64_MAX ? json_real((double)v) : json_integer((json_int_t)v), f->name);
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return node(s, json_real(*(const float *)p), f->name);
    case PROTOBUF_C_TYPE_DOUBLE:
        return node(s, json_real(*(const double *)p), f->name);
    case PROTOBUF_C_TYPE_BOOL:
        return node(s, json_boolean(*(const protobuf_c_boolean *)p), f->name);
    case PROTOBUF_C_TYPE_ENUM:
        return node(s, json_integer(*(const int *)p), f->name);
    case PROTOBUF_C_TYPE_STRING: {
        const char *str = *(const char *const *)p;
        json_t *v = json_string(str ? str : "");
        if (!v) {
            cl_err_stage(s->err, CL_EPARSE, CL_AGENT_STAGE_JSON, "%s: string is not UTF-8",
                         f->name);
            return NULL;
        }
        return node(s, v, f->name);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        if (b->len > CL_AGENT_MAX_JSON_NODES - s->nodes) {
            cl_err_stage(s->err, CL_ELIMIT, CL_AGENT_STAGE_JSON,
                         "%s: %zu bytes exceed the JSON budget (CL_AGENT_MAX_JSON_NODES)", f->name,
                         b->len);
            return NULL;
        }
        json_t *a = node(s, json_array(), f->name);
        for (size_t i = 0; a && i < b->len; i++) {
            if (json_array_append_new(a, node(s, json_integer(b->data[i]), f->name)) < 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        return sub ? msg_to_json(s, sub) : node(s, json_null(), f->name);
    }
    }
    cl_err_stage(s->err, CL_EUNSUPPORTED, CL_AGENT_STAGE_JSON, "%s: field type %d", f->name,
                 (int)f->type);
    return NULL;
}

static json_t *map_to_json(struct p2j *s, const ProtobufCFieldDescriptor *f,
                           const ProtobufCMessage *const *arr, size_t n)
{
    json_t *o = node(s, json_object(), f->name);
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    for (size_t i = 0; o && i < n; i++) {
        char num[32];
        const char *key = num;
        const void *kp = CMEMBER(arr[i], kf->offset);
        if (kf->type == PROTOBUF_C_TYPE_STRING) {
            key = *(const char *const *)kp;
            if (!key)
                key = "";
        } else {
            json_t *kv = value_to_json(s, kf, kp);
            if (!kv || !json_is_integer(kv)) {
                json_decref(kv);
                json_decref(o);
                return NULL;
            }
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(kv));
            json_decref(kv);
        }
        json_t *v = value_to_json(s, vf, CMEMBER(arr[i], vf->offset));
        if (!v || json_object_set_new(o, key, v) < 0) {
            if (v)
                cl_err_stage(s->err, CL_EPARSE, CL_AGENT_STAGE_JSON, "%s: map key is not UTF-8",
                             f->name);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *field_to_json(struct p2j *s, const ProtobufCMessage *m,
                             const ProtobufCFieldDescriptor *f)
{
    const void *p = CMEMBER(m, f->offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)CMEMBER(m, f->quantifier_offset);
        if (n > CL_AGENT_MAX_REPEATED) {
            cl_err_stage(s->err, CL_ELIMIT, CL_AGENT_STAGE_JSON,
                         "%s: %zu elements (CL_AGENT_MAX_REPEATED %u)", f->name, n,
                         CL_AGENT_MAX_REPEATED);
            return NULL;
        }
        const uint8_t *arr = *(const uint8_t *const *)p;
        if (is_map_field(f))
            return map_to_json(s, f, (const ProtobufCMessage *const *)arr, n);
        json_t *a = node(s, json_array(), f->name);
        size_t es = elem_size(f->type);
        for (size_t i = 0; a && i < n; i++) {
            json_t *v = value_to_json(s, f, arr + i * es);
            if (!v || json_array_append_new(a, v) < 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)CMEMBER(m, f->quantifier_offset) != f->id)
            return node(s, json_null(), f->name);
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        if (!*(const protobuf_c_boolean *)CMEMBER(m, f->quantifier_offset))
            return node(s, json_null(), f->name);
    }
    return value_to_json(s, f, p);
}

static json_t *msg_to_json(struct p2j *s, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = node(s, json_object(), d->name);
    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *oneof = real_oneof_name(d, f);
        json_t *v = field_to_json(s, m, f);
        if (v && oneof && !json_is_null(v)) {
            json_t *w = node(s, json_object(), f->name);
            if (!w || json_object_set_new(w, f->name, v) < 0) {
                json_decref(w);
                json_decref(o);
                return NULL;
            }
            v = w;
        }
        if (!v || json_object_set_new(o, oneof ? oneof : cl_agent_pb_json_key(f->name), v) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *cl_agent_pb_to_json(const ProtobufCMessage *m, struct cl_err *err)
{
    struct p2j s = {0, err};
    return msg_to_json(&s, m);
}

/* ---- JSON → protobuf ---- */

/* jansson's iteration takes a mutable object; these walks only read. */
static json_t *unconst(const json_t *v)
{
    json_t *m;
    memcpy(&m, &v, sizeof m);
    return m;
}

struct j2p {
    enum cl_agent_j2p_mode mode;
    struct cl_err *err;
    char path[512];
};

/* Appends ".name" to the path; returns the previous length to restore. */
static size_t path_push(struct j2p *s, const char *name)
{
    size_t n = strlen(s->path);
    snprintf(s->path + n, sizeof s->path - n, "%s%s", n ? "." : "", name);
    return n;
}

static int j2p_fail(struct j2p *s, const char *why, const json_t *v)
{
    char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    cl_err_stage(s->err, CL_EINVAL, CL_AGENT_STAGE_JSON, "%s: %s%s%.64s",
                 s->path[0] ? s->path : "(top)", why, text ? ": " : "", text ? text : "");
    free(text);
    return CL_EINVAL;
}

static int int_in(struct j2p *s, const json_t *v, long double lo, long double hi, long double *out)
{
    long double x;
    if (json_is_integer(v))
        x = (long double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))
        x = json_real_value(v);
    else
        return j2p_fail(s, "an integer is expected", v);
    if (x < lo || x > hi)
        return j2p_fail(s, "out of range for the field's type", v);
    *out = x;
    return 0;
}

static ProtobufCMessage *j2p_msg(struct j2p *s, const ProtobufCMessageDescriptor *d,
                                 const json_t *j, int depth);

static int j2p_value(struct j2p *s, const ProtobufCFieldDescriptor *f, const json_t *v, void *p,
                     int depth)
{
    long double x = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (int_in(s, v, INT32_MIN, INT32_MAX, &x) < 0)
            return CL_EINVAL;
        *(int32_t *)p = (int32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (int_in(s, v, 0, UINT32_MAX, &x) < 0)
            return CL_EINVAL;
        *(uint32_t *)p = (uint32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (json_is_integer(v)) {
            *(int64_t *)p = json_integer_value(v);
            return 0;
        }
        if (int_in(s, v, -9223372036854775808.0L, 9223372036854775807.0L, &x) < 0)
            return CL_EINVAL;
        *(int64_t *)p = (int64_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 0)
                return j2p_fail(s, "out of range for the field's type", v);
            *(uint64_t *)p = (uint64_t)json_integer_value(v);
            return 0;
        }
        if (int_in(s, v, 0, 18446744073709551615.0L, &x) < 0)
            return CL_EINVAL;
        *(uint64_t *)p = (uint64_t)x;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return j2p_fail(s, "a number is expected", v);
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)p = (float)json_number_value(v);
        else
            *(double *)p = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return j2p_fail(s, "a boolean is expected", v);
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_is_string(v)) {
            for (unsigned i = 0; i < ed->n_values; i++)
                if (strcmp(ed->values[i].name, json_string_value(v)) == 0) {
                    *(int *)p = ed->values[i].value;
                    return 0;
                }
            return j2p_fail(s, "no such enum value", v);
        }
        if (int_in(s, v, INT32_MIN, INT32_MAX, &x) < 0)
            return CL_EINVAL;
        *(int *)p = (int)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return j2p_fail(s, "a string is expected", v);
        size_t n = json_string_length(v);
        if (memchr(json_string_value(v), 0, n))
            return j2p_fail(s, "NUL inside a string", NULL);
        char *c = pb_alloc(NULL, n + 1);
        if (!c)
            return cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", s->path);
        memcpy(c, json_string_value(v), n + 1);
        *(char **)p = c;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        if (json_is_string(v)) {
            size_t n = json_string_length(v);
            b->data = pb_alloc(NULL, n ? n : 1);
            if (!b->data)
                return cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", s->path);
            memcpy(b->data, json_string_value(v), n);
            b->len = n;
            return 0;
        }
        if (!json_is_array(v))
            return j2p_fail(s, "an array of byte values or a string is expected", v);
        size_t n = json_array_size(v);
        b->data = pb_alloc(NULL, n ? n : 1);
        if (!b->data)
            return cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", s->path);
        b->len = n;
        for (size_t i = 0; i < n; i++) {
            if (int_in(s, json_array_get(v, i), 0, 255, &x) < 0)
                return CL_EINVAL;
            b->data[i] = (uint8_t)x;
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (json_is_null(v)) {
            *(ProtobufCMessage **)p = NULL;
            return 0;
        }
        *(ProtobufCMessage **)p = j2p_msg(s, f->descriptor, v, depth + 1);
        return *(ProtobufCMessage **)p ? 0 : (s->err ? s->err->code : CL_EINVAL);
    }
    return j2p_fail(s, "unsupported field type", NULL);
}

static int j2p_map(struct j2p *s, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                   const json_t *v, int depth)
{
    if (!json_is_object(v))
        return j2p_fail(s, "an object is expected (map)", v);
    size_t n = json_object_size(v);
    if (n > CL_AGENT_MAX_REPEATED)
        return j2p_fail(s, "too many map entries (CL_AGENT_MAX_REPEATED)", NULL);
    ProtobufCMessage **arr = pb_calloc(n ? n : 1, sizeof *arr);
    if (!arr)
        return cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", s->path);
    *(ProtobufCMessage ***)MEMBER(m, f->offset) = arr;
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach(unconst(v), key, val)
    {
        ProtobufCMessage *e = pb_alloc(NULL, ed->sizeof_message);
        if (!e)
            return cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", s->path);
        ed->message_init(e);
        arr[i++] = e;
        *(size_t *)MEMBER(m, f->quantifier_offset) = i;
        size_t mark = path_push(s, key);
        json_t *k = json_string(key);
        int rc = k ? 0 : CL_ENOMEM;
        if (rc == 0 && ed->fields[0].type != PROTOBUF_C_TYPE_STRING) {
            /* integer keys arrive as their decimal text */
            char *end = NULL;
            errno = 0;
            long long kv = strtoll(key, &end, 10);
            json_decref(k);
            k = (errno || !*key || *end) ? NULL : json_integer(kv);
            if (!k)
                rc = j2p_fail(s, "map key is not an integer", NULL);
        }
        if (rc == 0)
            rc = j2p_value(s, &ed->fields[0], k, MEMBER(e, ed->fields[0].offset), depth);
        json_decref(k);
        if (rc == 0 && !json_is_null(val))
            rc = j2p_value(s, &ed->fields[1], val, MEMBER(e, ed->fields[1].offset), depth);
        s->path[mark] = 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int j2p_field(struct j2p *s, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                     const json_t *v, int depth)
{
    if (json_is_null(v))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (is_map_field(f))
            return j2p_map(s, m, f, v, depth);
        if (!json_is_array(v))
            return j2p_fail(s, "an array is expected", v);
        size_t n = json_array_size(v), es = elem_size(f->type);
        if (n > CL_AGENT_MAX_REPEATED)
            return j2p_fail(s, "too many elements (CL_AGENT_MAX_REPEATED)", NULL);
        uint8_t *arr = pb_calloc(n ? n : 1, es);
        if (!arr)
            return cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", s->path);
        *(uint8_t **)MEMBER(m, f->offset) = arr;
        for (size_t i = 0; i < n; i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            size_t mark = path_push(s, idx);
            const json_t *e = json_array_get(v, i);
            int rc;
            if (json_is_null(e) && f->type == PROTOBUF_C_TYPE_MESSAGE)
                rc = j2p_fail(s, "null is not a message", NULL);
            else
                rc = j2p_value(s, f, e, arr + i * es, depth);
            s->path[mark] = 0;
            /* count what was written so that freeing releases it, failed or not (a failed
             * message element is NULL and must not be counted) */
            if (rc == 0 || f->type != PROTOBUF_C_TYPE_MESSAGE)
                *(size_t *)MEMBER(m, f->quantifier_offset) = i + 1;
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    int rc = j2p_value(s, f, v, MEMBER(m, f->offset), depth);
    if (rc == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        *(uint32_t *)MEMBER(m, f->quantifier_offset) = f->id;
    else if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
             f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) = 1;
    return rc;
}

/* Is key one this message accepts (field key, raw name or real oneof name)? */
static bool known_key(const ProtobufCMessageDescriptor *d, const char *key)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *oneof = real_oneof_name(d, &d->fields[i]);
        if (strcmp(key, oneof ? oneof : cl_agent_pb_json_key(d->fields[i].name)) == 0 ||
            strcmp(key, d->fields[i].name) == 0)
            return true;
    }
    return false;
}

static ProtobufCMessage *j2p_msg(struct j2p *s, const ProtobufCMessageDescriptor *d,
                                 const json_t *j, int depth)
{
    if (depth > CL_AGENT_MAX_DEPTH) {
        cl_err_stage(s->err, CL_ELIMIT, CL_AGENT_STAGE_JSON,
                     "%s: nested deeper than %d (CL_AGENT_MAX_DEPTH)", s->path, CL_AGENT_MAX_DEPTH);
        return NULL;
    }
    if (!json_is_object(j)) {
        j2p_fail(s, "an object is expected", j);
        return NULL;
    }
    if (s->mode == CL_AGENT_J2P_STRICT) {
        const char *key;
        json_t *val;
        json_object_foreach(unconst(j), key, val)
        {
            if (!known_key(d, key)) {
                size_t mark = path_push(s, key);
                char why[160];
                snprintf(why, sizeof why, "no such field in %s", d->name);
                j2p_fail(s, why, NULL);
                s->path[mark] = 0;
                return NULL;
            }
        }
    }
    ProtobufCMessage *m = pb_alloc(NULL, d->sizeof_message);
    if (!m) {
        cl_err_set(s->err, CL_ENOMEM, "%s: out of memory", d->name);
        return NULL;
    }
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *oneof = real_oneof_name(d, f);
        const json_t *v = json_object_get(j, oneof ? oneof : cl_agent_pb_json_key(f->name));
        if (!v)
            v = json_object_get(j, f->name);
        if (!v)
            continue;
        size_t mark = path_push(s, oneof ? oneof : f->name);
        int rc = 0;
        if (oneof && !json_is_null(v)) {
            if (!json_is_object(v) || json_object_size(v) != 1 || !json_object_get(v, f->name))
                rc = j2p_fail(s, "a oneof is null or an object with its one member", v);
            else
                v = json_object_get(v, f->name);
        }
        if (rc == 0)
            rc = j2p_field(s, m, f, v, depth);
        s->path[mark] = 0;
        if (rc < 0) {
            cl_agent_pb_free(m);
            return NULL;
        }
    }
    return m;
}

ProtobufCMessage *cl_agent_json_to_pb(const ProtobufCMessageDescriptor *d, const json_t *j,
                                      enum cl_agent_j2p_mode mode, struct cl_err *err)
{
    struct cl_err local = {0};
    struct j2p s = {mode, err ? err : &local, ""};
    return j2p_msg(&s, d, j, 0);
}
