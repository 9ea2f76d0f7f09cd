/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "Redis" backend (hiredis, any server speaking RESP): each value is the string key
 * "<namespace>:<key>" holding the raw bytes — trustee's layout. A small pool of blocking
 * connections with connect and command timeouts; a connection that fails (server restarted)
 * is reconnected and the command retried once. Compare-and-set is one Lua script (atomic on
 * the server); expiring values get the server's own expiry (EXAT), so nothing needs purging.
 * URL: redis://[[user]:password@]host[:port][/db]; REDIS_URL (read by the caller) wins.
 * rediss:// is the same over TLS: hiredis 0.14 has none, so it talks to one end of a
 * socketpair and a relay thread per connection carries the bytes over OpenSSL (store_tls.c),
 * the server always verified.
 */
#include "store/store_backend.h"
#include "store/store_pool.h"
#include "store/store_tls.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REDIS_MAX_URL 1024
#define REDIS_SCAN_COUNT "500"

struct rd_conn {
    redisContext *c;
    struct cl_store_tls *tls; /* rediss://: the relay under c */
};

struct rd_store {
    struct cl_store_pool pool;
    struct rd_conn *conns; /* indexed by pool slot */
    size_t nconns;
    unsigned timeout_ms;
    char host[256];
    int port;
    char *user, *password; /* owned, may be NULL */
    unsigned db;
    bool tls_url;                 /* rediss:// */
    struct cl_store_tls_ctx *tls; /* rediss://: CAs and client certificate, owned */
};

/* The script sees the key, the expected and the new value; KEEPTTL keeps a session's expiry. */
static const char cas_script[] = "local v = redis.call('GET', KEYS[1]) "
                                 "if v == false then return -1 end "
                                 "if v ~= ARGV[1] then return 0 end "
                                 "redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1";

/* A value's version is its SHA-1 (hex) computed by the server; the value travels only when
 * the version is not the caller's. */
static const char ver_script[] = "local v = redis.call('GET', KEYS[1]) "
                                 "if v == false then return -1 end "
                                 "local h = redis.sha1hex(v) "
                                 "if h == ARGV[1] then return {h} end "
                                 "return {h, v}";

/* ---- URL ---- */

static int parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
    if (n == 0 || n > 10)
        return CL_EPARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CL_EPARSE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return CL_EPARSE;
    *out = (unsigned)v;
    return 0;
}

static int parse_url(struct rd_store *st, const char *url, struct cl_err *err)
{
    if (strnlen(url, REDIS_MAX_URL + 1) > REDIS_MAX_URL)
        return cl_err_set(err, CL_ELIMIT, "Redis url: longer than %d characters", REDIS_MAX_URL);
    const char *p;
    if (strncmp(url, "rediss://", 9) == 0) {
        /* redis-rs reads rediss://...#insecure as "do not verify the server": never here. A
         * fragment follows the host (a password may hold a '#'). */
        const char *last_at = strrchr(url, '@');
        const char *frag = strchr(last_at ? last_at : url, '#');
        if (frag && strcmp(frag, "#insecure") == 0)
            return cl_err_set(err, CL_EINVAL,
                              "Redis url: rediss://...#insecure (no server verification) is "
                              "refused: the server's certificate is always verified; give its "
                              "CA in CLOISTER_REDIS_CA_FILE");
        if (frag)
            return cl_err_set(err, CL_EINVAL, "Redis url: fragment \"%.64s\" is not supported",
                              frag);
        st->tls_url = true;
        p = url + 9;
    } else if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else {
        return cl_err_set(err, CL_EINVAL, "Redis url: must start with redis:// or rediss://");
    }
    const char *end = p + strcspn(p, "/");
    const char *at = memrchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                st->user = strndup(p, (size_t)(colon - p));
            st->password = strndup(colon + 1, (size_t)(at - colon - 1));
        } else {
            st->password = strndup(p, (size_t)(at - p)); /* redis://password@host */
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    size_t hlen = (size_t)((colon ? colon : end) - p);
    if (hlen == 0 || hlen >= sizeof st->host)
        return cl_err_set(err, CL_EINVAL, "Redis url: host missing or too long");
    memcpy(st->host, p, hlen);
    st->host[hlen] = '\0';
    unsigned port = 6379;
    if (colon && parse_uint(colon + 1, (size_t)(end - colon - 1), 65535, &port) < 0)
        return cl_err_set(err, CL_EINVAL, "Redis url: port \"%.*s\" is not 0..65535",
                          (int)(end - colon - 1), colon + 1);
    st->port = (int)port;
    if (*end == '/' && end[1] && parse_uint(end + 1, strlen(end + 1), 1000000, &st->db) < 0)
        return cl_err_set(err, CL_EINVAL, "Redis url: database \"%s\" is not a number", end + 1);
    return 0;
}

/* ---- connections ---- */

static struct timeval tv_of(unsigned ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

/* Closes rc. A relay ends when hiredis closes its end, so it is joined after redisFree;
 * why[cap] gets why its TLS side had ended by itself, or "". */
static void conn_close(struct rd_conn *rc, char *why, size_t cap)
{
    if (rc->c)
        redisFree(rc->c);
    rc->c = NULL;
    cl_store_tls_close(rc->tls, why, cap);
    rc->tls = NULL;
}

static void conn_drop(struct rd_store *st, struct rd_conn *rc)
{
    char why[160];
    conn_close(rc, why, sizeof why);
    if (why[0])
        cl_warn("Redis TLS: %s:%d: %s", st->host, st->port, why);
}

static int ok_reply(redisContext *c, redisReply *r, const char *what, struct cl_err *err)
{
    int rc = 0;
    if (!r)
        rc = cl_err_set(err, CL_EIO, "Redis: %s: %s", what, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        rc = cl_err_set(err, CL_EIO, "Redis: %s: %s", what, r->str);
    freeReplyObject(r);
    return rc;
}

/* rediss://: hiredis on one end of a socketpair, the verified TLS relay on the other. Then a
 * PING: with TLS 1.3 a server that wants a client certificate refuses it only after the
 * handshake, and this is where the KBS should learn so, naming the stage. Any reply (even
 * NOAUTH) means the server took the session. */
static int conn_tls(struct rd_store *st, struct rd_conn *rc, struct cl_err *err)
{
    int fd = -1;
    if (!(rc->tls = cl_store_tls_connect(st->tls, st->host, st->port, st->timeout_ms, &fd, err)))
        return err ? err->code : CL_EIO;
    if (!(rc->c = redisConnectFd(fd))) {
        close(fd);
        conn_drop(st, rc);
        return cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
    }
    redisSetTimeout(rc->c, tv_of(st->timeout_ms));
    redisReply *r = redisCommand(rc->c, "PING");
    if (r) {
        freeReplyObject(r);
        return 0;
    }
    char hiredis_says[128], why[160];
    snprintf(hiredis_says, sizeof hiredis_says, "%s", rc->c->errstr);
    conn_close(rc, why, sizeof why);
    return cl_err_set(err, CL_EIO, "Redis TLS: handshake with %s:%d: %s", st->host, st->port,
                      why[0] ? why : hiredis_says);
}

static int conn_ensure(struct rd_store *st, struct rd_conn *rc, struct cl_err *err)
{
    if (rc->c && rc->c->err == 0)
        return 0;
    conn_drop(st, rc);
    if (st->tls) {
        int r = conn_tls(st, rc, err);
        if (r < 0)
            return r;
    } else {
        rc->c = redisConnectWithTimeout(st->host, st->port, tv_of(st->timeout_ms));
        if (!rc->c)
            return cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
        if (rc->c->err) {
            int r = cl_err_set(err, CL_EIO, "Redis: connect %s:%d: %s", st->host, st->port,
                               rc->c->errstr);
            conn_drop(st, rc);
            return r;
        }
        redisSetTimeout(rc->c, tv_of(st->timeout_ms));
    }
    int r = 0;
    if (st->password)
        r = st->user ? ok_reply(rc->c, redisCommand(rc->c, "AUTH %s %s", st->user, st->password),
                                "AUTH", err)
                     : ok_reply(rc->c, redisCommand(rc->c, "AUTH %s", st->password), "AUTH", err);
    if (r == 0 && st->db)
        r = ok_reply(rc->c, redisCommand(rc->c, "SELECT %u", st->db), "SELECT", err);
    if (r < 0)
        conn_drop(st, rc);
    return r;
}

static struct rd_conn *pool_take(struct rd_store *st, struct cl_err *err)
{
    long i = cl_store_pool_take(&st->pool, err);
    return i < 0 ? NULL : &st->conns[i];
}

static void pool_give(struct rd_store *st, struct rd_conn *rc)
{
    cl_store_pool_give(&st->pool, (size_t)(rc - st->conns));
}

/* Runs one command (argv form, binary-safe) with one retry on a broken connection. Returns
 * the reply (caller frees; REDIS_REPLY_ERROR already turned into EIO) or NULL with err. */
static redisReply *cmd(struct rd_store *st, int argc, const char **argv, const size_t *lens,
                       struct cl_err *err)
{
    struct rd_conn *rc = pool_take(st, err);
    if (!rc)
        return NULL;
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (conn_ensure(st, rc, err) < 0)
            break;
        r = redisCommandArgv(rc->c, argc, argv, lens);
        if (r)
            break;
        cl_warn("Redis: %s: %s; reconnecting", argv[0], rc->c->errstr);
        cl_err_set(err, CL_EIO, "Redis: %s: %s", argv[0], rc->c->errstr);
        conn_drop(st, rc);
    }
    pool_give(st, rc);
    if (r && r->type == REDIS_REPLY_ERROR) {
        cl_err_set(err, CL_EIO, "Redis: %s: %s", argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static char *full_key(const char *ns, const char *key, struct cl_err *err)
{
    char *k = NULL;
    if (asprintf(&k, "%s:%s", ns, key) < 0) {
        cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
        return NULL;
    }
    return k;
}

/* ---- operations ---- */

static int rd_set(void *impl, const char *ns, const char *key, const void *data, size_t len,
                  bool overwrite, int64_t expires_unix, struct cl_err *err)
{
    struct rd_store *st = impl;
    CL_AUTO(cl_str) *k = full_key(ns, key, err);
    if (!k)
        return CL_ENOMEM;
    char exat[24];
    snprintf(exat, sizeof exat, "%" PRId64, expires_unix);
    const char *argv[6] = {"SET", k, data};
    size_t lens[6] = {3, strlen(k), len};
    int argc = 3;
    if (!overwrite) {
        argv[argc] = "NX";
        lens[argc++] = 2;
    }
    if (expires_unix > 0) {
        argv[argc] = "EXAT";
        lens[argc++] = 4;
        argv[argc] = exat;
        lens[argc++] = strlen(exat);
    }
    redisReply *r = cmd(st, argc, argv, lens, err);
    if (!r)
        return err ? err->code : CL_EIO;
    int rc = 0;
    if (r->type == REDIS_REPLY_NIL)
        rc = cl_err_set(err, CL_EEXISTS, "store key \"%s\" in \"%s\": already exists", key, ns);
    freeReplyObject(r);
    return rc;
}

static cl_bytes *rd_get(void *impl, const char *ns, const char *key, size_t *len,
                        struct cl_err *err)
{
    struct rd_store *st = impl;
    CL_AUTO(cl_str) *k = full_key(ns, key, err);
    if (!k)
        return NULL;
    const char *argv[2] = {"GET", k};
    size_t lens[2] = {3, strlen(k)};
    redisReply *r = cmd(st, 2, argv, lens, err);
    if (!r)
        return NULL;
    cl_bytes *v = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        v = malloc(r->len + 1);
        if (v) {
            memcpy(v, r->str, r->len);
            v[r->len] = 0;
            *len = r->len;
        } else {
            cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
        }
    } else {
        cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    }
    freeReplyObject(r);
    return v;
}

static int rd_del(void *impl, const char *ns, const char *key, struct cl_err *err)
{
    struct rd_store *st = impl;
    CL_AUTO(cl_str) *k = full_key(ns, key, err);
    if (!k)
        return CL_ENOMEM;
    const char *argv[2] = {"DEL", k};
    size_t lens[2] = {3, strlen(k)};
    redisReply *r = cmd(st, 2, argv, lens, err);
    if (!r)
        return err ? err->code : CL_EIO;
    int rc = 0;
    if (r->type != REDIS_REPLY_INTEGER || r->integer == 0)
        rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    freeReplyObject(r);
    return rc;
}

static int rd_list(void *impl, const char *ns, char ***keys, size_t *n, struct cl_err *err)
{
    struct rd_store *st = impl;
    /* Namespace characters are [A-Za-z0-9-_./]: none is a glob metacharacter. */
    CL_AUTO(cl_str) *pat = full_key(ns, "*", err);
    if (!pat)
        return CL_ENOMEM;
    size_t plen = strlen(ns) + 1;
    char cursor[32] = "0";
    char **out = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", pat, "COUNT", REDIS_SCAN_COUNT};
        size_t lens[6] = {4, strlen(cursor), 5, strlen(pat), 5, strlen(REDIS_SCAN_COUNT)};
        redisReply *r = cmd(st, 6, argv, lens, err);
        if (!r) {
            rc = err ? err->code : CL_EIO;
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            rc = cl_err_set(err, CL_EPARSE, "Redis: SCAN: unexpected reply");
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        for (size_t i = 0; rc == 0 && i < r->element[1]->elements; i++) {
            redisReply *e = r->element[1]->element[i];
            if (e->type != REDIS_REPLY_STRING || e->len <= plen || memchr(e->str, '\0', e->len))
                continue;
            const char *k = e->str + plen;
            if (!cl_store_key_valid(k))
                continue;
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 16;
                char **nk = reallocarray(out, nc, sizeof *nk);
                if (!nk) {
                    rc = cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
                    break;
                }
                out = nk;
                cap = nc;
            }
            if (!(out[cnt] = strdup(k)))
                rc = cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
            else
                cnt++;
        }
        freeReplyObject(r);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    if (rc < 0) {
        cl_store_list_free(out, cnt);
        return rc;
    }
    /* SCAN may return a key twice; store.c sorts, so drop neighbours after sorting there is
     * not possible here: dedup now. */
    size_t w = 0;
    for (size_t i = 0; i < cnt; i++) {
        bool dup = false;
        for (size_t j = 0; j < w && !dup; j++)
            dup = strcmp(out[j], out[i]) == 0;
        if (dup)
            free(out[i]);
        else
            out[w++] = out[i];
    }
    if (w == 0) {
        free(out);
        out = NULL;
    }
    *keys = out;
    *n = w;
    return 0;
}

static int rd_cas(void *impl, const char *ns, const char *key, const void *old_data, size_t old_len,
                  const void *new_data, size_t new_len, struct cl_err *err)
{
    struct rd_store *st = impl;
    CL_AUTO(cl_str) *k = full_key(ns, key, err);
    if (!k)
        return CL_ENOMEM;
    const char *argv[6] = {"EVAL", cas_script, "1", k, old_data, new_data};
    size_t lens[6] = {4, strlen(cas_script), 1, strlen(k), old_len, new_len};
    redisReply *r = cmd(st, 6, argv, lens, err);
    if (!r)
        return err ? err->code : CL_EIO;
    int rc = 0;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = cl_err_set(err, CL_EIO, "Redis: compare-and-set: unexpected reply");
    else if (r->integer == -1)
        rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    else if (r->integer == 0)
        rc = cl_err_set(err, CL_EEXISTS, "store key \"%s\" in \"%s\": changed meanwhile", key, ns);
    freeReplyObject(r);
    return rc;
}

static int rd_get_if_changed(void *impl, const char *ns, const char *key, const uint8_t *have,
                             size_t have_len, uint8_t *ver, size_t *vlen, cl_bytes **val,
                             size_t *len, struct cl_err *err)
{
    struct rd_store *st = impl;
    CL_AUTO(cl_str) *k = full_key(ns, key, err);
    if (!k)
        return CL_ENOMEM;
    const char *argv[5] = {"EVAL", ver_script, "1", k, have ? (const char *)have : ""};
    size_t lens[5] = {4, strlen(ver_script), 1, strlen(k), have ? have_len : 0};
    redisReply *r = cmd(st, 5, argv, lens, err);
    if (!r)
        return err ? err->code : CL_EIO;
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
        rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements > 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[0]->len > CL_STORE_VERSION_MAX ||
               (r->elements == 2 && r->element[1]->type != REDIS_REPLY_STRING)) {
        rc = cl_err_set(err, CL_EIO, "Redis: version of \"%s\": unexpected reply", key);
    } else {
        *vlen = r->element[0]->len;
        memcpy(ver, r->element[0]->str, *vlen);
        if (r->elements == 2) {
            redisReply *e = r->element[1];
            if (!(*val = malloc(e->len + 1))) {
                rc = cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
            } else {
                memcpy(*val, e->str, e->len);
                (*val)[e->len] = 0;
                *len = e->len;
                rc = 1;
            }
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Expiring values carry EXAT: the server drops them itself. */
static int rd_purge(void *impl, const char *ns, const char bound[CL_STORE_EXP_DIGITS], size_t *n,
                    struct cl_err *err)
{
    (void)impl, (void)ns, (void)bound, (void)err;
    *n = 0;
    return 0;
}

static void rd_close(void *impl)
{
    struct rd_store *st = impl;
    if (!st)
        return;
    for (size_t i = 0; st->conns && i < st->nconns; i++)
        conn_drop(st, &st->conns[i]);
    free(st->conns);
    cl_store_tls_ctx_free(st->tls);
    free(st->user);
    if (st->password)
        explicit_bzero(st->password, strlen(st->password));
    free(st->password);
    cl_store_pool_destroy(&st->pool);
    free(st);
}

/* rediss:// loads the CAs and the client certificate once for every connection. TLS files
 * with a redis:// url are a mistake that would send the data in clear: refused. */
static int tls_setup(struct rd_store *st, const struct cl_store_opts *o, struct cl_err *err)
{
    if (!st->tls_url) {
        if (o->redis_ca_file || o->redis_cert_file || o->redis_key_file)
            return cl_err_set(err, CL_EINVAL,
                              "Redis url: redis:// (no TLS) while TLS files are given (CA file "
                              "or client certificate): write rediss:// to use TLS, or drop them");
        return 0;
    }
    st->tls = cl_store_tls_ctx_new("Redis TLS", o->redis_ca_file, o->redis_cert_file,
                                   o->redis_key_file, err);
    return st->tls ? 0 : err ? err->code : CL_EINVAL;
}

static void *rd_open(const struct cl_store_opts *o, struct cl_err *err)
{
    struct rd_store *st = calloc(1, sizeof *st);
    if (!st) {
        cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
        return NULL;
    }
    st->timeout_ms = o->timeout_ms ? o->timeout_ms : CL_STORE_TIMEOUT_MS_DEFAULT;
    st->nconns = o->pool_size ? o->pool_size : CL_STORE_POOL_DEFAULT;
    st->conns = calloc(st->nconns, sizeof *st->conns);
    if (!st->conns || cl_store_pool_init(&st->pool, st->nconns, st->timeout_ms, "Redis", err) < 0) {
        cl_err_set(err, CL_ENOMEM, "Redis: out of memory");
        rd_close(st);
        return NULL;
    }
    if (parse_url(st, o->redis_url ? o->redis_url : "redis://127.0.0.1:6379", err) < 0 ||
        tls_setup(st, o, err) < 0 || conn_ensure(st, &st->conns[0], err) < 0) {
        rd_close(st);
        return NULL;
    }
    return st;
}

const struct cl_store_backend cl_store_backend_redis = {
    .name = "Redis",
    .alias = "redis",
    .shared = true,
    .open = rd_open,
    .set = rd_set,
    .get = rd_get,
    .del = rd_del,
    .list = rd_list,
    .cas = rd_cas,
    .purge = rd_purge,
    .get_if_changed = rd_get_if_changed,
    .close = rd_close,
};
