/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reference Value Provider. Registration messages carry name → value pairs; each is stored in
 * the namespace "reference_value" as {"version","name","expiration","value"} (trustee's record
 * shape). Unlike upstream, the expiration is enforced on every query.
 */
#include "as/as_internal.h"

#include <string.h>
#include <time.h>

static cl_str *rfc3339(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return NULL;
    return cl_strdupf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac]Z" (UTC only). */
static int parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return CL_EPARSE;
    if (*end == '.') {
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return CL_EPARSE;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int rv_store_one(struct cl_as *as, const char *name, json_t *value, struct cl_err *err)
{
    if (!cl_store_key_valid(name))
        return cl_err_stage(err, CL_EINVAL, "rvps",
                            "reference value name '%.64s' is not a valid key", name);
    CL_AUTO(cl_str) *exp = rfc3339(cl_now_unix() + (int64_t)as->rv_validity_days * 86400);
    CL_AUTO(json_t) *rec = json_pack("{s:s, s:s, s:s?, s:O}", "version", "0.1.0", "name", name,
                                     "expiration", exp, "value", value);
    CL_AUTO(cl_str) *text = rec ? cl_json_compact(rec) : NULL;
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return cl_store_set(as->store, CL_AS_NS_RV, name, text, strlen(text), true, err);
}

int cl_as_rv_register(struct cl_as *as, const json_t *message, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!json_is_object(message))
        return cl_err_stage(err, CL_EPARSE, "rvps",
                            "reference value message must be a JSON object");
    CL_AUTO(json_t) *values = NULL;
    json_t *payload = json_object_get(message, "payload");
    if (payload) {
        const char *version = NULL, *type = NULL, *p = NULL;
        if (cl_json_opt_str(message, "version", &version, err) < 0 ||
            cl_json_get_str(message, "type", &type, err) < 0 ||
            cl_json_get_str(message, "payload", &p, err) < 0) {
            err->stage = "rvps";
            return cl_err_prefix(err, "reference value message");
        }
        if (version && strcmp(version, "0.1.0") != 0)
            return cl_err_stage(err, CL_EPARSE, "rvps",
                                "reference value message: version '%.32s' is not 0.1.0", version);
        if (strcmp(type, "sample") != 0)
            return cl_err_stage(
                err, CL_EUNSUPPORTED, "rvps",
                "reference value message: type '%.32s' has no extractor (supported: sample)", type);
        size_t n = 0;
        CL_AUTO(cl_bytes) *raw =
            cl_b64_decode(p, strlen(p), CL_B64_STD, CL_AS_MAX_RV_BYTES, &n, err);
        if (!raw) {
            err->stage = "rvps";
            return cl_err_prefix(err, "reference value message 'payload'");
        }
        values = cl_json_parse((const char *)raw, n, CL_JSON_MAX_DEPTH, err);
        if (!values) {
            err->stage = "rvps";
            return cl_err_prefix(err, "reference value message 'payload'");
        }
        if (!json_is_object(values))
            return cl_err_stage(err, CL_EPARSE, "rvps",
                                "reference value message 'payload' must hold a JSON object");
    } else {
        values = json_incref((json_t *)(uintptr_t)message); /* plain form {"name": [values]} */
    }
    if (json_object_size(values) == 0)
        return cl_err_stage(err, CL_EINVAL, "rvps", "reference value message holds no values");
    if (json_object_size(values) > CL_AS_MAX_RV_NAMES)
        return cl_err_stage(err, CL_ELIMIT, "rvps",
                            "reference value message holds %zu names (limit %d)",
                            json_object_size(values), CL_AS_MAX_RV_NAMES);
    /* Validate every name before storing any, so a bad message leaves the store as it was. */
    const char *name;
    json_t *v;
    json_object_foreach(values, name, v)
    {
        if (!cl_store_key_valid(name))
            return cl_err_stage(err, CL_EINVAL, "rvps",
                                "reference value name '%.64s' is not a valid key", name);
    }
    json_object_foreach(values, name, v)
    {
        int rc = rv_store_one(as, name, v, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

json_t *cl_as_rv_query(struct cl_as *as, const char *name, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!cl_store_key_valid(name)) {
        cl_err_stage(err, CL_EINVAL, "rvps", "reference value name '%.64s' is not a valid key",
                     name);
        return NULL;
    }
    size_t n = 0;
    CL_AUTO(cl_bytes) *raw = cl_store_get(as->store, CL_AS_NS_RV, name, &n, err);
    if (!raw)
        return NULL;
    CL_AUTO(json_t) *rec = cl_json_parse((const char *)raw, n, CL_JSON_MAX_DEPTH, err);
    const char *exp = NULL;
    if (!rec || cl_json_get_str(rec, "expiration", &exp, err) < 0 ||
        !json_object_get(rec, "value")) {
        cl_err_stage(err, CL_EPARSE, "rvps", "stored reference value '%.64s' is corrupt", name);
        return NULL;
    }
    int64_t t = 0;
    if (parse_rfc3339(exp, &t) < 0) {
        cl_err_stage(err, CL_EPARSE, "rvps",
                     "stored reference value '%.64s': bad expiration '%.40s'", name, exp);
        return NULL;
    }
    if (t <= cl_now_unix()) {
        cl_err_stage(err, CL_EEXPIRED, "rvps", "reference value '%.64s' expired at %s", name, exp);
        return NULL;
    }
    return json_incref(json_object_get(rec, "value"));
}
