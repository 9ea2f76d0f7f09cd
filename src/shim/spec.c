// SPDX-License-Identifier: Apache-2.0
/*
 * The bundle's OCI config.json → the agent's protobuf Spec (grpc.Spec, protos/kata/oci.proto).
 * Kata's Spec mirrors the OCI runtime spec with the Go field names (Process.Args, Linux.
 * UIDMappings, ...), so the conversion is generic: an OCI JSON key matches the proto field of
 * the same name compared without case ("ociVersion" is the one renamed key, → Version);
 * objects become messages, arrays repeated fields, objects under map fields map entries.
 * Keys the proto does not have are skipped (logged at debug). Numbers are range-checked
 * against the field's type.
 *
 * Before converting, the spec is rewritten for a guest that pulls its own image and shares
 * no file system with the host (docs/shim.md "What the guest sees").
 */
#include "shim/shim.h"
#include "json/json.h"

#include <protobuf-c/protobuf-c.h>
#include <string.h>
#include <strings.h>

#include "oci.pb-c.h"

#define SPEC_MAX_DEPTH 16

static int from_json(const ProtobufCMessageDescriptor *d, const json_t *obj, ProtobufCMessage **out,
                     int depth, const char *path, struct cl_err *err);

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *d,
                                                   const char *key)
{
    if (strcmp(key, "ociVersion") == 0)
        key = "Version";
    for (unsigned i = 0; i < d->n_fields; i++)
        if (strcasecmp(d->fields[i].name, key) == 0)
            return &d->fields[i];
    return NULL;
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_FLOAT:
        return 4;
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return sizeof(void *);
    }
}

/* One element (a scalar, string or message) from v into dst (the field's storage). */
static int element(const ProtobufCFieldDescriptor *f, const json_t *v, void *dst, int depth,
                   const char *path, struct cl_err *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return cl_err_set(err, CL_EPARSE, "config.json: '%s' must be a string", path);
        char *s = strdup(json_string_value(v));
        if (!s)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return cl_err_set(err, CL_EPARSE, "config.json: '%s' must be true or false", path);
        *(protobuf_c_boolean *)dst = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        /* OCI writes uint64 limits (memory.swap = -1 in some specs); jansson holds int64. */
        if (!json_is_integer(v))
            return cl_err_set(err, CL_EPARSE, "config.json: '%s' must be an integer", path);
        json_int_t n = json_integer_value(v);
        bool is32 = scalar_size(f->type) == 4;
        bool is_unsigned = f->type == PROTOBUF_C_TYPE_UINT32 ||
                           f->type == PROTOBUF_C_TYPE_FIXED32 ||
                           f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64;
        if (is32 && is_unsigned && (n < 0 || n > (json_int_t)UINT32_MAX))
            return cl_err_set(err, CL_EPARSE, "config.json: '%s' = %lld is out of range", path,
                              (long long)n);
        if (is32 && !is_unsigned && (n < INT32_MIN || n > INT32_MAX))
            return cl_err_set(err, CL_EPARSE, "config.json: '%s' = %lld is out of range", path,
                              (long long)n);
        if (is32)
            *(uint32_t *)dst = (uint32_t)n;
        else
            *(uint64_t *)dst = (uint64_t)n;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = NULL;
        int rc = from_json(f->descriptor, v, &m, depth + 1, path, err);
        if (rc == 0)
            *(ProtobufCMessage **)dst = m;
        return rc;
    }
    default:
        return cl_err_set(err, CL_EUNSUPPORTED, "config.json: '%s': proto type %d not handled",
                          path, (int)f->type);
    }
}

/* A JSON object into a map field: one {key, value} entry message per member. */
static int map_field(const ProtobufCFieldDescriptor *f, const json_t *v, ProtobufCMessage *m,
                     int depth, const char *path, struct cl_err *err)
{
    if (!json_is_object(v))
        return cl_err_set(err, CL_EPARSE, "config.json: '%s' must be an object", path);
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *vf = protobuf_c_message_descriptor_get_field(ed, 2);
    size_t n = json_object_size(v);
    ProtobufCMessage **arr = n ? calloc(n, sizeof *arr) : NULL;
    if (n && !arr)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    *(size_t *)((char *)m + f->quantifier_offset) = 0;
    *(void **)((char *)m + f->offset) = arr;
    const char *k;
    json_t *ev;
    size_t i = 0;
    json_object_foreach((json_t *)(uintptr_t)v, k, ev)
    {
        ProtobufCMessage *e = calloc(1, ed->sizeof_message);
        if (!e)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        protobuf_c_message_init(ed, e);
        arr[i++] = e;
        *(size_t *)((char *)m + f->quantifier_offset) = i;
        char *key = strdup(k);
        if (!key)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        *(char **)((char *)e + protobuf_c_message_descriptor_get_field(ed, 1)->offset) = key;
        if (element(vf, ev, (char *)e + vf->offset, depth, path, err) < 0)
            return err->code;
    }
    return 0;
}

static int set_field(const ProtobufCFieldDescriptor *f, const json_t *v, ProtobufCMessage *m,
                     int depth, const char *path, struct cl_err *err)
{
    if (json_is_null(v))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && json_is_object(v))
            return map_field(f, v, m, depth, path, err);
        if (!json_is_array(v))
            return cl_err_set(err, CL_EPARSE, "config.json: '%s' must be an array", path);
        size_t n = json_array_size(v), esz = scalar_size(f->type);
        char *arr = n ? calloc(n, esz) : NULL;
        if (n && !arr)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        *(void **)((char *)m + f->offset) = arr;
        for (size_t i = 0; i < n; i++) {
            /* count first so that free_unpacked releases what was filled */
            *(size_t *)((char *)m + f->quantifier_offset) = i + 1;
            if (element(f, json_array_get(v, i), arr + i * esz, depth, path, err) < 0)
                return err->code;
        }
        return 0;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_BYTES)
        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    return element(f, v, (char *)m + f->offset, depth, path, err);
}

static int from_json(const ProtobufCMessageDescriptor *d, const json_t *obj, ProtobufCMessage **out,
                     int depth, const char *path, struct cl_err *err)
{
    if (depth > SPEC_MAX_DEPTH)
        return cl_err_set(err, CL_ELIMIT, "config.json: '%s' nests deeper than %d", path,
                          SPEC_MAX_DEPTH);
    if (!json_is_object(obj))
        return cl_err_set(err, CL_EPARSE, "config.json: '%s' must be an object", path);
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    protobuf_c_message_init(d, m);
    /* Keys match fields without case, so two keys ("rlimits", "Rlimits") can name one field:
     * refused, not merged (the second would also leak what the first allocated). */
    bool *seen = calloc(d->n_fields ? d->n_fields : 1, sizeof *seen);
    if (!seen) {
        protobuf_c_message_free_unpacked(m, NULL);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    int rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, k, v)
    {
        const ProtobufCFieldDescriptor *f = field_named(d, k);
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
        if (!f) {
            cl_debug("config.json: '%s' has no place in the agent's %s; skipped", sub,
                     d->short_name);
            continue;
        }
        size_t idx = (size_t)(f - d->fields);
        if (seen[idx]) {
            rc = cl_err_set(err, CL_EPARSE, "config.json: '%s' names the field %s a second time",
                            sub, f->name);
            break;
        }
        seen[idx] = true;
        if ((rc = set_field(f, v, m, depth, sub, err)) < 0)
            break;
    }
    free(seen);
    if (rc < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- the rewrite for the guest ---- */

static bool host_bind(const json_t *mnt)
{
    const char *type = json_string_value(json_object_get(mnt, "type"));
    if (type && strcmp(type, "bind") == 0)
        return true;
    json_t *opts = json_object_get(mnt, "options");
    size_t i;
    json_t *o;
    json_array_foreach(opts, i, o)
    {
        const char *s = json_string_value(o);
        if (s && (strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0))
            return true;
    }
    return false;
}

static int rewrite(json_t *spec, const char *cid, struct cl_err *err)
{
    json_t *root = json_object();
    CL_AUTO(cl_str) *rootfs = cl_strdupf("%s/%s/rootfs", CL_SHIM_GUEST_RUN, cid);
    if (!root || !rootfs) {
        json_decref(root);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    json_t *old_root = json_object_get(spec, "root");
    json_object_set_new(root, "path", json_string(rootfs));
    json_object_set(root, "readonly",
                    json_is_true(json_object_get(old_root, "readonly")) ? json_true()
                                                                        : json_false());
    json_object_set_new(spec, "root", root);
    json_object_del(spec, "hooks");

    json_t *mounts = json_object_get(spec, "mounts");
    if (mounts && !json_is_array(mounts))
        return cl_err_set(err, CL_EPARSE, "config.json: 'mounts' must be an array");
    for (size_t i = json_array_size(mounts); i-- > 0;) {
        json_t *mnt = json_array_get(mounts, i);
        if (!json_is_object(mnt))
            return cl_err_set(err, CL_EPARSE, "config.json: 'mounts[%zu]' must be an object", i);
        if (host_bind(mnt)) {
            cl_info("guest spec of %s: host bind mount of '%s' dropped (no shared file system)",
                    cid, json_string_value(json_object_get(mnt, "source")));
            json_array_remove(mounts, i);
        }
    }

    json_t *proc = json_object_get(spec, "process");
    if (json_is_object(proc)) {
        json_object_del(proc, "apparmorProfile"); /* host LSM profiles do not exist in the guest */
        json_object_del(proc, "selinuxLabel");
    }
    json_t *linux = json_object_get(spec, "linux");
    if (json_is_object(linux)) {
        CL_AUTO(cl_str) *cg = cl_strdupf("/cloister/%s", cid);
        if (!cg)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        json_object_set_new(linux, "cgroupsPath", json_string(cg));
        json_object_del(linux, "devices"); /* host device nodes */
        json_object_del(linux, "mountLabel");
        json_t *nss = json_object_get(linux, "namespaces");
        for (size_t i = json_array_size(nss); i-- > 0;) {
            json_t *ns = json_array_get(nss, i);
            const char *type = json_string_value(json_object_get(ns, "type"));
            if (type && strcmp(type, "network") == 0) {
                json_array_remove(nss, i); /* the VM's network is the pod's */
                continue;
            }
            if (json_is_object(ns))
                json_object_del(ns, "path"); /* host namespace files */
        }
    }
    return 0;
}

struct ProtobufCMessage *cl_shim_spec_from_oci(const json_t *spec, const char *cid,
                                               struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!json_is_object(spec)) {
        cl_err_set(err, CL_EPARSE, "config.json: not an object");
        return NULL;
    }
    CL_AUTO(json_t) *copy = json_deep_copy(spec);
    if (!copy) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    if (rewrite(copy, cid, err) < 0)
        return NULL;
    ProtobufCMessage *m = NULL;
    if (from_json(&grpc__spec__descriptor, copy, &m, 0, "", err) < 0)
        return NULL;
    return m;
}

struct ProtobufCMessage *cl_shim_process_from_oci(const json_t *proc, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    CL_AUTO(json_t) *copy = json_is_object(proc) ? json_deep_copy(proc) : NULL;
    if (!copy) {
        cl_err_set(err, CL_EPARSE, "exec spec: not an OCI process object");
        return NULL;
    }
    json_object_del(copy, "apparmorProfile");
    json_object_del(copy, "selinuxLabel");
    ProtobufCMessage *m = NULL;
    if (from_json(&grpc__process__descriptor, copy, &m, 0, "process", err) < 0)
        return NULL;
    return m;
}

void cl_shim_spec_free(struct ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}
