/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RCAR sessions: id (32 lowercase hex, as trustee's simple UUID form), challenge nonce (32
 * random bytes, standard base64), expiry, state (fresh → claimed → attested | failed).
 *
 * In memory by default, bounded: when the table is full the expired sessions are purged, and
 * if it is still full a new handshake is refused rather than evicting live ones. Expired
 * sessions are removed on read and by cl_kbs_sessions_purge.
 *
 * With a shared store (session_storage_type Postgres or Redis) a session is the expiring value
 * `kbs_protocol_session/<id>` = expiry digits + {"tee","nonce","state","token"}, so the
 * auth, attest and resource requests of one client may reach different replicas. Every state
 * change is a compare-and-set on the whole value: two replicas racing one challenge cannot
 * both claim it. Expired sessions go with one DELETE (Postgres) or the server's own expiry
 * (Redis). There max_sessions is per replica: it bounds the unexpired sessions this process
 * created (a ring of their expiry times: every session lives as long, so creation order is
 * expiry order), without a count over the shared table on every /auth.
 */
#include "kbs/kbs_internal.h"

#include <string.h>

static const char *const state_names[] = {"fresh", "claimed", "attested", "failed"};

/* ---- shared store ---- */

static cl_str *shared_encode(const struct cl_kbs_session *x, size_t *len)
{
    CL_AUTO(json_t) *j = json_pack("{s:s, s:s, s:s}", "tee", x->tee, "nonce", x->nonce, "state",
                                   state_names[x->state]);
    if (!j || (x->token && json_object_set_new(j, "token", json_string(x->token)) < 0))
        return NULL;
    cl_str *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    if (t)
        *len = strlen(t);
    return t;
}

int cl_kbs_session_decode(const char *id, const uint8_t *v, size_t n, struct cl_kbs_session *out,
                          struct cl_err *err)
{
    int64_t exp = 0;
    size_t off = 0;
    if (strlen(id) != KBS_SESSION_ID_LEN || n > KBS_SESSION_MAX_STORED ||
        cl_store_expiring_split(v, n, &exp, &off) < 0)
        return cl_err_set(err, CL_EPARSE, "session %.8s...: stored value is not a Cloister session",
                          id);
    struct cl_err je = {0};
    CL_AUTO(json_t) *j = cl_json_parse((const char *)v + off, n - off, CL_JSON_MAX_DEPTH, &je);
    const char *tee = NULL, *nonce = NULL, *state = NULL, *token = NULL;
    if (!j ||
        json_unpack(j, "{s:s, s:s, s:s, s?:s}", "tee", &tee, "nonce", &nonce, "state", &state,
                    "token", &token) < 0 ||
        strlen(nonce) != KBS_NONCE_B64_LEN || strlen(tee) >= sizeof out->tee)
        return cl_err_set(err, CL_EPARSE, "session %.8s...: stored value does not parse", id);
    memset(out, 0, sizeof *out);
    out->state = KBS_SESSION_FAILED; /* an unknown state name: nothing more is allowed */
    for (size_t i = 0; i < CL_ARRAY_LEN(state_names); i++)
        if (strcmp(state, state_names[i]) == 0)
            out->state = (enum cl_kbs_session_state)i;
    memcpy(out->id, id, KBS_SESSION_ID_LEN + 1);
    memcpy(out->nonce, nonce, KBS_NONCE_B64_LEN + 1);
    snprintf(out->tee, sizeof out->tee, "%s", tee);
    out->expires_unix = exp;
    out->token = token ? strdup(token) : NULL;
    if (token && !out->token)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return 0;
}

/* Reads id; *raw = the stored bytes (new) for a later compare-and-set. */
static int shared_get(struct cl_kbs_sessions *s, const char *id, struct cl_kbs_session *out,
                      cl_bytes **raw, size_t *rawlen, struct cl_err *err)
{
    if (strlen(id) != KBS_SESSION_ID_LEN || !cl_store_key_valid(id))
        return cl_err_set(err, CL_ENOTFOUND, "no such session");
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *v = cl_store_get(s->shared, KBS_NS_SESSION, id, &n, &e);
    if (!v)
        return e.code == CL_ENOTFOUND ? cl_err_set(err, CL_ENOTFOUND, "no such session")
                                      : cl_err_set(err, e.code, "session store: %s", e.msg);
    int rc = cl_kbs_session_decode(id, v, n, out, err);
    if (rc < 0)
        return rc;
    if (out->expires_unix <= cl_now_unix()) {
        free(out->token);
        out->token = NULL;
        if (cl_store_delete(s->shared, KBS_NS_SESSION, id, NULL) < 0)
            cl_debug("session %.8s...: expired, already gone", id);
        return cl_err_set(err, CL_EEXPIRED, "session expired");
    }
    if (raw) {
        *raw = CL_STEAL(v);
        *rawlen = n;
    }
    return 0;
}

/* Moves id from state `from` to `to` (with token) by compare-and-set on the whole value. */
static int shared_transition(struct cl_kbs_sessions *s, const char *id,
                             enum cl_kbs_session_state from, enum cl_kbs_session_state to,
                             const char *token, struct cl_err *err)
{
    struct cl_kbs_session x;
    CL_AUTO(cl_bytes) *raw = NULL;
    size_t rawlen = 0, nlen = 0;
    int rc = shared_get(s, id, &x, &raw, &rawlen, err);
    if (rc < 0)
        return rc;
    free(x.token);
    x.token = NULL;
    if (x.state != from)
        return cl_err_set(err, CL_EEXISTS, "session %.8s...: challenge already %s", id,
                          state_names[x.state]);
    x.state = to;
    x.token = (char *)(uintptr_t)token;
    CL_AUTO(cl_str) *payload = shared_encode(&x, &nlen);
    if (!payload)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    size_t tot = CL_STORE_EXP_DIGITS + nlen;
    CL_AUTO(cl_bytes) *nv = malloc(tot);
    if (!nv)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    memcpy(nv, raw, CL_STORE_EXP_DIGITS); /* same expiry */
    memcpy(nv + CL_STORE_EXP_DIGITS, payload, nlen);
    struct cl_err e = {0};
    rc = cl_store_cas(s->shared, KBS_NS_SESSION, id, raw, rawlen, nv, tot, &e);
    if (rc == CL_EEXISTS)
        return cl_err_set(err, CL_EEXISTS, "session %.8s...: challenge taken by another request",
                          id);
    if (rc < 0)
        return cl_err_set(err, rc, "session store: %s", e.msg);
    return 0;
}

static size_t bucket_of(const struct cl_kbs_sessions *s, const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (size_t)(h & (s->nbuckets - 1));
}

int cl_kbs_sessions_init(struct cl_kbs_sessions *s, size_t max, unsigned lifetime_s)
{
    memset(s, 0, sizeof *s);
    s->nbuckets = 1024;
    while (s->nbuckets < max && s->nbuckets < (1u << 22))
        s->nbuckets <<= 1;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets)
        return CL_ENOMEM;
    s->max = max;
    s->lifetime_ns = (uint64_t)lifetime_s * 1000000000u;
    pthread_mutex_init(&s->lock, NULL);
    return 0;
}

static void session_free(struct cl_kbs_session *x)
{
    if (!x)
        return;
    free(x->token);
    explicit_bzero(x, sizeof *x);
    free(x);
}

void cl_kbs_sessions_destroy(struct cl_kbs_sessions *s)
{
    if (!s->buckets)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct cl_kbs_session *x = s->buckets[i];
        while (x) {
            struct cl_kbs_session *n = x->next;
            session_free(x);
            x = n;
        }
    }
    free(s->buckets);
    free(s->ring);
    pthread_mutex_destroy(&s->lock);
    s->buckets = NULL;
    s->ring = NULL;
}

static size_t purge_locked(struct cl_kbs_sessions *s, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct cl_kbs_session **pp = &s->buckets[i];
        while (*pp) {
            if ((*pp)->expires_ns <= now) {
                struct cl_kbs_session *dead = *pp;
                *pp = dead->next;
                session_free(dead);
                s->count--;
                n++;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    return n;
}

size_t cl_kbs_sessions_purge(struct cl_kbs_sessions *s)
{
    if (s->shared) {
        size_t n = 0;
        struct cl_err e = {0};
        if (cl_store_purge_expired(s->shared, KBS_NS_SESSION, cl_now_unix(), &n, &e) < 0)
            cl_warn("session purge: %s", e.msg);
        return n;
    }
    pthread_mutex_lock(&s->lock);
    size_t n = purge_locked(s, cl_now_mono_ns());
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Shared store: admits one more session of this replica expiring at exp, or ELIMIT. */
static int replica_admit(struct cl_kbs_sessions *s, int64_t exp, int64_t now, struct cl_err *err)
{
    pthread_mutex_lock(&s->lock);
    while (s->rcount && s->ring[s->rhead] <= now) {
        s->rhead = (s->rhead + 1) % s->rcap;
        s->rcount--;
    }
    if (s->rcount >= s->max) {
        pthread_mutex_unlock(&s->lock);
        return cl_err_set(err, CL_ELIMIT,
                          "too many open sessions on this replica (max_sessions %zu, counted per "
                          "replica); retry later",
                          s->max);
    }
    if (s->rcount == s->rcap) {
        size_t nc = s->rcap ? s->rcap * 2 : 64;
        nc = nc > s->max ? s->max : nc;
        int64_t *nr = calloc(nc, sizeof *nr);
        if (!nr) {
            pthread_mutex_unlock(&s->lock);
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < s->rcount; i++)
            nr[i] = s->ring[(s->rhead + i) % s->rcap];
        free(s->ring);
        s->ring = nr;
        s->rcap = nc;
        s->rhead = 0;
    }
    s->ring[(s->rhead + s->rcount) % s->rcap] = exp;
    s->rcount++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Gives back the newest admission (its store write failed). */
static void replica_unadmit(struct cl_kbs_sessions *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->rcount)
        s->rcount--;
    pthread_mutex_unlock(&s->lock);
}

int cl_kbs_session_create(struct cl_kbs_sessions *s, const char *tee,
                          char id[KBS_SESSION_ID_LEN + 1], char nonce[KBS_NONCE_B64_LEN + 1],
                          int64_t *expires_unix, struct cl_err *err)
{
    uint8_t rnd[KBS_SESSION_ID_LEN / 2 + 32]; /* one read: the id, then the nonce */
    uint8_t *rid = rnd, *rnonce = rnd + KBS_SESSION_ID_LEN / 2;
    if (cl_random(rnd, sizeof rnd, err) < 0)
        return err ? err->code : CL_EIO;
    struct cl_kbs_session *x = calloc(1, sizeof *x);
    CL_AUTO(cl_str) *hid = cl_hex_encode(rid, KBS_SESSION_ID_LEN / 2);
    CL_AUTO(cl_str) *bn = cl_b64_encode(rnonce, 32, CL_B64_STD);
    if (!x || !hid || !bn) {
        free(x);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    memcpy(x->id, hid, KBS_SESSION_ID_LEN);
    memcpy(x->nonce, bn, KBS_NONCE_B64_LEN);
    snprintf(x->tee, sizeof x->tee, "%s", tee);
    uint64_t now = cl_now_mono_ns();
    x->expires_ns = now + s->lifetime_ns;
    x->expires_unix = cl_now_unix() + (int64_t)(s->lifetime_ns / 1000000000u);
    if (s->shared) {
        size_t len = 0;
        struct cl_err e = {0};
        int arc = replica_admit(s, x->expires_unix, cl_now_unix(), err);
        if (arc < 0) {
            session_free(x);
            return arc;
        }
        CL_AUTO(cl_str) *v = shared_encode(x, &len);
        int rc = v ? cl_store_set_expiring(s->shared, KBS_NS_SESSION, x->id, v, len, false,
                                           x->expires_unix, &e)
                   : cl_err_set(&e, CL_ENOMEM, "out of memory");
        if (rc == 0) {
            memcpy(id, x->id, KBS_SESSION_ID_LEN + 1);
            memcpy(nonce, x->nonce, KBS_NONCE_B64_LEN + 1);
            *expires_unix = x->expires_unix;
        }
        session_free(x);
        if (rc < 0)
            replica_unadmit(s);
        return rc < 0 ? cl_err_set(err, rc == CL_ENOMEM ? CL_ENOMEM : CL_EIO, "session store: %s",
                                   e.msg)
                      : 0;
    }
    pthread_mutex_lock(&s->lock);
    if (s->count >= s->max)
        purge_locked(s, now);
    if (s->count >= s->max) {
        pthread_mutex_unlock(&s->lock);
        session_free(x);
        return cl_err_set(err, CL_ELIMIT, "too many open sessions (%zu); retry later", s->max);
    }
    size_t b = bucket_of(s, x->id);
    x->next = s->buckets[b];
    s->buckets[b] = x;
    s->count++;
    pthread_mutex_unlock(&s->lock);
    memcpy(id, x->id, KBS_SESSION_ID_LEN + 1);
    memcpy(nonce, x->nonce, KBS_NONCE_B64_LEN + 1);
    *expires_unix = x->expires_unix;
    return 0;
}

/* Finds id; removes it when expired. Caller holds the lock. */
static struct cl_kbs_session *find_locked(struct cl_kbs_sessions *s, const char *id, int *rc)
{
    if (strlen(id) != KBS_SESSION_ID_LEN) {
        *rc = CL_ENOTFOUND;
        return NULL;
    }
    struct cl_kbs_session **pp = &s->buckets[bucket_of(s, id)];
    for (; *pp; pp = &(*pp)->next) {
        if (!cl_memeq_ct((*pp)->id, id, KBS_SESSION_ID_LEN))
            continue;
        if ((*pp)->expires_ns <= cl_now_mono_ns()) {
            struct cl_kbs_session *dead = *pp;
            *pp = dead->next;
            session_free(dead);
            s->count--;
            *rc = CL_EEXPIRED;
            return NULL;
        }
        *rc = 0;
        return *pp;
    }
    *rc = CL_ENOTFOUND;
    return NULL;
}

int cl_kbs_session_get(struct cl_kbs_sessions *s, const char *id, struct cl_kbs_session *out,
                       struct cl_err *err)
{
    if (s->shared)
        return shared_get(s, id, out, NULL, NULL, err);
    int rc;
    pthread_mutex_lock(&s->lock);
    struct cl_kbs_session *x = find_locked(s, id, &rc);
    if (x) {
        *out = *x;
        out->next = NULL;
        out->token = x->token ? strdup(x->token) : NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == CL_EEXPIRED)
        return cl_err_set(err, rc, "session expired");
    if (rc < 0)
        return cl_err_set(err, rc, "no such session");
    return 0;
}

int cl_kbs_session_claim(struct cl_kbs_sessions *s, const char *id, struct cl_err *err)
{
    if (s->shared)
        return shared_transition(s, id, KBS_SESSION_FRESH, KBS_SESSION_CLAIMED, NULL, err);
    int rc;
    pthread_mutex_lock(&s->lock);
    struct cl_kbs_session *x = find_locked(s, id, &rc);
    if (x && x->state != KBS_SESSION_FRESH)
        rc = CL_EEXISTS;
    else if (x)
        x->state = KBS_SESSION_CLAIMED;
    pthread_mutex_unlock(&s->lock);
    if (rc == CL_EEXISTS)
        return cl_err_set(err, rc, "session %.8s...: challenge taken by another request", id);
    return rc < 0 ? cl_err_set(err, rc, rc == CL_EEXPIRED ? "session expired" : "no such session")
                  : 0;
}

int cl_kbs_session_set_token(struct cl_kbs_sessions *s, const char *id, const char *token,
                             struct cl_err *err)
{
    enum cl_kbs_session_state to = token ? KBS_SESSION_ATTESTED : KBS_SESSION_FAILED;
    if (s->shared)
        return shared_transition(s, id, KBS_SESSION_CLAIMED, to, token, err);
    int rc;
    char *copy = token ? strdup(token) : NULL;
    if (token && !copy)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->lock);
    struct cl_kbs_session *x = find_locked(s, id, &rc);
    if (x && x->state != KBS_SESSION_CLAIMED) {
        rc = CL_EEXISTS;
    } else if (x) {
        free(x->token);
        x->token = copy;
        x->state = to;
        copy = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free(copy);
    if (rc == CL_EEXISTS)
        return cl_err_set(err, rc, "session %.8s...: not claimed by this request", id);
    return rc < 0 ? cl_err_set(err, rc, "session vanished") : 0;
}
