/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "Memory" backend: one array of (namespace, key, value) entries kept sorted by
 * namespace then key, found by binary search, guarded by a read-write lock. Lost at exit,
 * like trustee's Memory backend; meant for tests and for sessions of a single replica.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "store/store_backend.h"

struct mem_entry {
    char *ns;
    char *key;
    uint8_t *val;
    size_t len;
};

struct mem_store {
    pthread_rwlock_t lock;
    struct mem_entry *v;
    size_t n, cap;
};

static int entry_cmp(const struct mem_entry *e, const char *ns, const char *key)
{
    int c = strcmp(e->ns, ns);
    return c ? c : strcmp(e->key, key);
}

/* Index of the entry, or of the place where it would go; *found says which. */
static size_t find(const struct mem_store *m, const char *ns, const char *key, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = entry_cmp(&m->v[mid], ns, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void *mem_open(const struct cl_store_opts *o, struct cl_err *err)
{
    (void)o;
    struct mem_store *m = calloc(1, sizeof *m);
    if (!m) {
        cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
        return NULL;
    }
    if (pthread_rwlock_init(&m->lock, NULL) != 0) {
        free(m);
        cl_err_set(err, CL_EIO, "Memory store: lock init failed");
        return NULL;
    }
    return m;
}

static uint8_t *dup_value(const void *data, size_t len)
{
    uint8_t *p = malloc(len + 1);
    if (p) {
        memcpy(p, data, len);
        p[len] = 0;
    }
    return p;
}

static int mem_set(void *impl, const char *ns, const char *key, const void *data, size_t len,
                   bool overwrite, int64_t expires_unix, struct cl_err *err)
{
    (void)expires_unix; /* purged by store.c's list + get + delete */
    struct mem_store *m = impl;
    /* Copies are made before taking the lock, so the lock is never held across malloc. */
    uint8_t *val = dup_value(data, len);
    if (!val)
        return cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
    int rc = 0;
    bool found;
    pthread_rwlock_wrlock(&m->lock);
    size_t i = find(m, ns, key, &found);
    if (found) {
        if (!overwrite) {
            rc = cl_err_set(err, CL_EEXISTS, "store key \"%s\" in \"%s\": already exists", key, ns);
            goto out;
        }
        free(m->v[i].val);
        m->v[i].val = val;
        m->v[i].len = len;
        val = NULL;
        goto out;
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct mem_entry *nv = reallocarray(m->v, ncap, sizeof *nv);
        if (!nv) {
            rc = cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
            goto out;
        }
        m->v = nv;
        m->cap = ncap;
    }
    char *nsd = strdup(ns), *keyd = strdup(key);
    if (!nsd || !keyd) {
        free(nsd);
        free(keyd);
        rc = cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
        goto out;
    }
    memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof *m->v);
    m->v[i] = (struct mem_entry){nsd, keyd, val, len};
    m->n++;
    val = NULL;
out:
    pthread_rwlock_unlock(&m->lock);
    free(val);
    return rc;
}

static cl_bytes *mem_get(void *impl, const char *ns, const char *key, size_t *len,
                         struct cl_err *err)
{
    struct mem_store *m = impl;
    bool found;
    cl_bytes *out = NULL;
    pthread_rwlock_rdlock(&m->lock);
    size_t i = find(m, ns, key, &found);
    if (!found) {
        cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    } else {
        out = dup_value(m->v[i].val, m->v[i].len);
        if (out)
            *len = m->v[i].len;
        else
            cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
    }
    pthread_rwlock_unlock(&m->lock);
    return out;
}

static int mem_del(void *impl, const char *ns, const char *key, struct cl_err *err)
{
    struct mem_store *m = impl;
    bool found;
    struct mem_entry gone = {0};
    pthread_rwlock_wrlock(&m->lock);
    size_t i = find(m, ns, key, &found);
    if (found) {
        gone = m->v[i];
        memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
        m->n--;
    }
    pthread_rwlock_unlock(&m->lock);
    if (!found)
        return cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    free(gone.ns);
    free(gone.key);
    free(gone.val);
    return 0;
}

static int mem_list(void *impl, const char *ns, char ***keys, size_t *n, struct cl_err *err)
{
    struct mem_store *m = impl;
    int rc = 0;
    char **out = NULL;
    size_t cnt = 0;
    bool found;
    pthread_rwlock_rdlock(&m->lock);
    /* "" sorts before every key, so this is the first entry of the namespace. */
    size_t first = find(m, ns, "", &found), end = first;
    while (end < m->n && strcmp(m->v[end].ns, ns) == 0)
        end++;
    if (end > first) {
        out = calloc(end - first, sizeof *out);
        if (!out) {
            rc = cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
            goto out;
        }
        for (size_t i = first; i < end; i++) {
            out[cnt] = strdup(m->v[i].key);
            if (!out[cnt]) {
                rc = cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
                goto out;
            }
            cnt++;
        }
    }
out:
    pthread_rwlock_unlock(&m->lock);
    if (rc < 0) {
        cl_store_list_free(out, cnt);
        return rc;
    }
    *keys = out;
    *n = cnt;
    return 0;
}

static int mem_cas(void *impl, const char *ns, const char *key, const void *old_data,
                   size_t old_len, const void *new_data, size_t new_len, struct cl_err *err)
{
    struct mem_store *m = impl;
    uint8_t *val = dup_value(new_data, new_len);
    if (!val)
        return cl_err_set(err, CL_ENOMEM, "Memory store: out of memory");
    int rc = 0;
    bool found;
    pthread_rwlock_wrlock(&m->lock);
    size_t i = find(m, ns, key, &found);
    if (!found) {
        rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    } else if (m->v[i].len != old_len || memcmp(m->v[i].val, old_data, old_len) != 0) {
        rc = cl_err_set(err, CL_EEXISTS, "store key \"%s\" in \"%s\": changed meanwhile", key, ns);
    } else {
        free(m->v[i].val);
        m->v[i].val = val;
        m->v[i].len = new_len;
        val = NULL;
    }
    pthread_rwlock_unlock(&m->lock);
    free(val);
    return rc;
}

static void mem_close(void *impl)
{
    struct mem_store *m = impl;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].ns);
        free(m->v[i].key);
        free(m->v[i].val);
    }
    free(m->v);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

const struct cl_store_backend cl_store_backend_memory = {
    .name = "Memory",
    .alias = NULL,
    .open = mem_open,
    .set = mem_set,
    .get = mem_get,
    .del = mem_del,
    .list = mem_list,
    .cas = mem_cas,
    .close = mem_close,
};
