/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The built-in attestation policy: trustee's default CPU/GPU appraisal for the sample TEEs,
 * written natively, used when no Rego policy named "<id>_<class>" is stored. Claims are
 * compared with reference values fetched through the RVPS; a missing or expired reference
 * value never matches, so the corresponding claim stays at its "not recognised" value.
 */
#include "as/as_internal.h"

#include <string.h>

/* AR4SI claim names in the order trustee serialises them. */
static const char *const ar4si_claims[] = {
    "instance-identity", "configuration", "executables", "file-system",
    "hardware", "runtime-opaque", "storage-opaque", "sourced-data",
};

/* True when value equals rv or is a member of the array rv. */
static bool rv_contains(struct cl_as *as, const char *name, const json_t *value)
{
    if (!value)
        return false;
    struct cl_err e = {0};
    CL_AUTO(json_t) *rv = cl_as_rv_query(as, name, &e);
    if (!rv) {
        if (e.code != CL_ENOTFOUND)
            cl_warn("reference value '%s': %s", name, e.msg);
        return false;
    }
    if (json_is_array(rv)) {
        size_t i;
        json_t *x;
        json_array_foreach(rv, i, x)
        {
            if (json_equal(x, value))
                return true;
        }
        return false;
    }
    return json_equal(rv, value);
}

static json_int_t rv_int(struct cl_as *as, const char *name, bool *ok)
{
    struct cl_err e = {0};
    CL_AUTO(json_t) *rv = cl_as_rv_query(as, name, &e);
    json_t *v = rv;
    if (json_is_array(rv) && json_array_size(rv) == 1)
        v = json_array_get(rv, 0);
    *ok = json_is_integer(v);
    return *ok ? json_integer_value(v) : 0;
}

json_t *cl_as_native_policy(struct cl_as *as, const char *tee, const char *tee_class, const json_t *input,
                            struct cl_err *err)
{
    json_int_t executables = 33, hardware = 97, configuration = 36;
    const json_t *ev = json_object_get(input, tee);
    if (strcmp(tee, "sample") == 0 && json_is_object(ev)) {
        if (rv_contains(as, "launch_digest", json_object_get(ev, "launch_digest")))
            executables = 3;
        const json_t *pv = json_object_get(ev, "platform_version");
        bool ok_major = false, ok_minor = false;
        json_int_t major = rv_int(as, "major_version", &ok_major);
        json_int_t minor = rv_int(as, "minimum_minor_version", &ok_minor);
        const json_t *pmaj = json_object_get(pv, "major"), *pmin = json_object_get(pv, "minor");
        if (rv_contains(as, "svn", json_object_get(ev, "svn")) && ok_major && ok_minor && json_is_integer(pmaj) &&
            json_is_integer(pmin) && json_integer_value(pmaj) == major && json_integer_value(pmin) >= minor)
            hardware = 2;
        if (json_is_false(json_object_get(ev, "debug")))
            configuration = 2;
    } else if (strcmp(tee, "sampledevice") == 0 && json_is_object(ev)) {
        if (rv_contains(as, "device_svn", json_object_get(ev, "svn")))
            hardware = 2;
        configuration = 0;
        executables = 0;
    } else {
        cl_err_stage(err, CL_EDENIED, "policy", "built-in policy default_%s has no rules for TEE '%s'", tee_class, tee);
        return NULL;
    }
    json_t *v = json_object();
    for (size_t i = 0; v && i < CL_ARRAY_LEN(ar4si_claims); i++) {
        json_int_t x = 0;
        if (strcmp(ar4si_claims[i], "executables") == 0)
            x = executables;
        else if (strcmp(ar4si_claims[i], "hardware") == 0)
            x = hardware;
        else if (strcmp(ar4si_claims[i], "configuration") == 0)
            x = configuration;
        json_object_set_new(v, ar4si_claims[i], json_integer(x));
    }
    if (!v)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return v;
}

const char *cl_as_ear_status(const json_t *vector)
{
    static const char *const tiers[] = {"none", "affirming", "warning", "contraindicated"};
    int worst = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)vector, k, v)
    {
        json_int_t x = json_integer_value(v);
        int t = (x >= -1 && x <= 1) ? 0 : (x >= -32 && x <= 31) ? 1 : (x >= -96 && x <= 95) ? 2 : 3;
        if (t > worst)
            worst = t;
    }
    return tiers[worst];
}
