// SPDX-License-Identifier: Apache-2.0
/*
 * runtime.toml: the shim's host-level configuration (hypervisor, kernel, initrd, sizes,
 * accelerator, agent channel, vTPM, state folder). Read with src/toml into JSON, then
 * walked with one table of {table, key, kind, field}: every key the file may hold is in
 * that table, anything else is refused by name, so a typo cannot silently fall back to a
 * default.
 */
#include "shim/shim.h"
#include "toml/toml.h"

#include <stddef.h>
#include <string.h>

enum kind { K_PATH, K_STR, K_UINT, K_BOOL, K_KVM, K_TRANSPORT, K_ARGS, K_LEVEL };

struct key {
    const char *table;
    const char *name;
    enum kind kind;
    size_t off;
    unsigned min, max; /* K_UINT */
};

#define F(m) offsetof(struct cl_shim_config, m)
static const struct key keys[] = {
    {"hypervisor", "path", K_PATH, F(qemu), 0, 0},
    {"hypervisor", "kernel", K_PATH, F(kernel), 0, 0},
    {"hypervisor", "initrd", K_PATH, F(initrd), 0, 0},
    {"hypervisor", "kernel_params", K_STR, F(kernel_params), 0, 0},
    {"hypervisor", "machine", K_STR, F(machine), 0, 0},
    {"hypervisor", "vcpus", K_UINT, F(vcpus), 1, 64},
    {"hypervisor", "memory_mib", K_UINT, F(memory_mib), 128, 262144},
    {"hypervisor", "kvm", K_KVM, F(kvm), 0, 0},
    {"hypervisor", "extra_args", K_ARGS, F(extra_args), 0, 0},
    {"agent", "channel", K_TRANSPORT, F(transport), 0, 0},
    {"agent", "boot_timeout_s", K_UINT, F(boot_timeout_s), 1, 3600},
    {"agent", "call_timeout_s", K_UINT, F(call_timeout_s), 1, 3600},
    {"tpm", "enabled", K_BOOL, F(tpm), 0, 0},
    {"tpm", "swtpm", K_PATH, F(swtpm), 0, 0},
    {"runtime", "state_dir", K_PATH, F(state_dir), 0, 0},
    {"runtime", "log_level", K_LEVEL, F(log_level), 0, 0},
};
#undef F

void cl_shim_config_defaults(struct cl_shim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->qemu = strdup("/usr/bin/qemu-system-x86_64");
    cfg->kernel = strdup("/usr/share/cloister/vmlinuz");
    cfg->initrd = strdup("/usr/share/cloister/initrd.img");
    cfg->kernel_params = strdup("");
    cfg->machine = strdup("q35");
    cfg->vcpus = 1;
    cfg->memory_mib = 1024;
    cfg->kvm = CL_SHIM_KVM_AUTO;
    cfg->transport = CL_SHIM_AGENT_SERIAL;
    cfg->boot_timeout_s = 60;
    cfg->call_timeout_s = 60;
    cfg->tpm = true;
    cfg->swtpm = strdup("/usr/bin/swtpm");
    cfg->state_dir = strdup("/run/cloister/shim");
    cfg->log_level = strdup("info");
}

static void free_args(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

void cl_shim_config_clear(struct cl_shim_config *cfg)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++) {
        char *base = (char *)cfg + keys[i].off;
        if (keys[i].kind == K_PATH || keys[i].kind == K_STR || keys[i].kind == K_LEVEL)
            free(*(char **)base);
    }
    free_args(cfg->extra_args, cfg->nextra_args);
    memset(cfg, 0, sizeof *cfg);
}

static const struct key *find_key(const char *table, const char *name)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].table, table) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool known_table(const char *table)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].table, table) == 0)
            return true;
    return false;
}

#define BAD(k, ...) cl_err_set(err, CL_EPARSE, "runtime.toml: '%s.%s' " __VA_ARGS__)

static int set_str(char **dst, const char *s, struct cl_err *err)
{
    char *d = strdup(s);
    if (!d)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    free(*dst);
    *dst = d;
    return 0;
}

/* One key's value into cfg (a scratch copy: the caller swaps it in on success). */
static int apply(const struct key *k, json_t *v, struct cl_shim_config *cfg, struct cl_err *err)
{
    char *base = (char *)cfg + k->off;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    switch (k->kind) {
    case K_PATH:
        if (!s)
            return BAD(k, "must be a string", k->table, k->name);
        if (s[0] != '/')
            return BAD(k, "must be an absolute path, not '%.128s'", k->table, k->name, s);
        return set_str((char **)base, s, err);
    case K_STR:
        if (!s)
            return BAD(k, "must be a string", k->table, k->name);
        if (strlen(s) > 4096)
            return BAD(k, "is longer than 4096 bytes", k->table, k->name);
        return set_str((char **)base, s, err);
    case K_LEVEL:
        if (!s ||
            (strcmp(s, "error") && strcmp(s, "warn") && strcmp(s, "info") && strcmp(s, "debug")))
            return BAD(k, "must be one of \"error\", \"warn\", \"info\", \"debug\"", k->table,
                       k->name);
        return set_str((char **)base, s, err);
    case K_UINT:
        if (!json_is_integer(v) || json_integer_value(v) < k->min || json_integer_value(v) > k->max)
            return BAD(k, "must be an integer %u..%u", k->table, k->name, k->min, k->max);
        *(unsigned *)base = (unsigned)json_integer_value(v);
        return 0;
    case K_BOOL:
        if (!json_is_boolean(v))
            return BAD(k, "must be true or false", k->table, k->name);
        *(bool *)base = json_is_true(v);
        return 0;
    case K_KVM:
        if (s && strcmp(s, "auto") == 0)
            *(enum cl_shim_kvm *)base = CL_SHIM_KVM_AUTO;
        else if (s && strcmp(s, "on") == 0)
            *(enum cl_shim_kvm *)base = CL_SHIM_KVM_ON;
        else if (s && strcmp(s, "off") == 0)
            *(enum cl_shim_kvm *)base = CL_SHIM_KVM_OFF;
        else
            return BAD(k, "must be \"auto\", \"on\" or \"off\"", k->table, k->name);
        return 0;
    case K_TRANSPORT:
        if (s && strcmp(s, "serial") == 0)
            *(enum cl_shim_transport *)base = CL_SHIM_AGENT_SERIAL;
        else if (s && strcmp(s, "vsock") == 0)
            *(enum cl_shim_transport *)base = CL_SHIM_AGENT_VSOCK;
        else if (s && strcmp(s, "tcp_insecure") == 0)
            *(enum cl_shim_transport *)base = CL_SHIM_AGENT_TCP_INSECURE;
        else
            return BAD(k, "must be \"serial\", \"vsock\" or \"tcp_insecure\"", k->table, k->name);
        return 0;
    case K_ARGS: {
        if (!json_is_array(v))
            return BAD(k, "must be an array of strings", k->table, k->name);
        size_t n = json_array_size(v);
        if (n > CL_SHIM_MAX_EXTRA_ARGS)
            return cl_err_set(err, CL_ELIMIT, "runtime.toml: '%s.%s' has %zu elements (at most %d)",
                              k->table, k->name, n, CL_SHIM_MAX_EXTRA_ARGS);
        char **a = calloc(n + 1, sizeof *a);
        if (!a)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e) || !(a[i] = strdup(json_string_value(e)))) {
                free_args(a, i);
                return BAD(k, "element %zu must be a string", k->table, k->name, i);
            }
        }
        free_args(cfg->extra_args, cfg->nextra_args);
        cfg->extra_args = a;
        cfg->nextra_args = n;
        return 0;
    }
    }
    return cl_err_set(err, CL_EINVAL, "runtime.toml: key kind %d", (int)k->kind);
}

/* A deep copy of the string and array members, so a failed parse leaves cfg untouched. */
static int config_copy(const struct cl_shim_config *src, struct cl_shim_config *dst,
                       struct cl_err *err)
{
    *dst = *src;
    dst->extra_args = NULL;
    dst->nextra_args = 0;
    bool ok = true;
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++) {
        if (keys[i].kind != K_PATH && keys[i].kind != K_STR && keys[i].kind != K_LEVEL)
            continue;
        char **d = (char **)((char *)dst + keys[i].off);
        const char *s = *(char *const *)((const char *)src + keys[i].off);
        *d = s ? strdup(s) : NULL;
        ok = ok && (!s || *d);
    }
    if (src->nextra_args) {
        dst->extra_args = calloc(src->nextra_args + 1, sizeof *dst->extra_args);
        ok = ok && dst->extra_args;
        for (size_t i = 0; ok && i < src->nextra_args; i++) {
            dst->extra_args[i] = strdup(src->extra_args[i]);
            dst->nextra_args = i + 1;
            ok = dst->extra_args[i] != NULL;
        }
    }
    if (!ok) {
        cl_shim_config_clear(dst);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    return 0;
}

int cl_shim_config_parse(const char *text, size_t len, struct cl_shim_config *cfg,
                         struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (len > CL_SHIM_MAX_CONFIG)
        return cl_err_set(err, CL_ELIMIT, "runtime.toml: %zu bytes (at most %u)", len,
                          CL_SHIM_MAX_CONFIG);
    json_t *doc = cl_toml_parse(text, len, err);
    if (!doc)
        return cl_err_prefix(err, "runtime.toml");
    struct cl_shim_config tmp;
    int rc = config_copy(cfg, &tmp, err);
    const char *tname;
    json_t *table;
    json_object_foreach(doc, tname, table)
    {
        if (rc < 0)
            break;
        if (!known_table(tname)) {
            rc = cl_err_set(err, CL_EPARSE, "runtime.toml: unknown table or key '%.64s'", tname);
            break;
        }
        if (!json_is_object(table)) {
            rc = cl_err_set(err, CL_EPARSE, "runtime.toml: '%.64s' must be a table", tname);
            break;
        }
        const char *kname;
        json_t *v;
        json_object_foreach(table, kname, v)
        {
            const struct key *k = find_key(tname, kname);
            if (!k) {
                rc = cl_err_set(err, CL_EPARSE, "runtime.toml: unknown key '%.64s.%.64s'", tname,
                                kname);
                break;
            }
            if ((rc = apply(k, v, &tmp, err)) < 0)
                break;
        }
    }
    json_decref(doc);
    if (rc < 0) {
        cl_shim_config_clear(&tmp);
        return rc;
    }
    cl_shim_config_clear(cfg);
    *cfg = tmp;
    return 0;
}

const char *cl_shim_config_path(const char *option_path)
{
    if (option_path && *option_path)
        return option_path;
    const char *env = getenv(CL_SHIM_CONFIG_ENV);
    if (env && *env)
        return env;
    return CL_SHIM_DEFAULT_CONFIG;
}

int cl_shim_config_load(const char *path, struct cl_shim_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, CL_SHIM_MAX_CONFIG, &n, err);
    if (!text)
        return cl_err_prefix(err, "runtime config %s", path);
    if (cl_shim_config_parse((const char *)text, n, cfg, err) < 0)
        return cl_err_prefix(err, "%s", path);
    return 0;
}
