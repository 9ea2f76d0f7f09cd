/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RCAR sessions: id (32 lowercase hex, as trustee's simple UUID form), challenge nonce (32
 * random bytes, standard base64), expiry. In memory, bounded: when the table is full the
 * expired sessions are purged, and if it is still full a new handshake is refused rather
 * than evicting live ones. Expired sessions are removed on read and by kbs_sessions_purge.
 */
#include "kbs/kbs_internal.h"

#include <string.h>

static size_t bucket_of(const struct kbs_sessions *s, const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (size_t)(h & (s->nbuckets - 1));
}

int kbs_sessions_init(struct kbs_sessions *s, size_t max, unsigned lifetime_s)
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

static void session_free(struct kbs_session *x)
{
    if (!x)
        return;
    free(x->token);
    explicit_bzero(x, sizeof *x);
    free(x);
}

void kbs_sessions_destroy(struct kbs_sessions *s)
{
    if (!s->buckets)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct kbs_session *x = s->buckets[i];
        while (x) {
            struct kbs_session *n = x->next;
            session_free(x);
            x = n;
        }
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->lock);
    s->buckets = NULL;
}

static size_t purge_locked(struct kbs_sessions *s, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct kbs_session **pp = &s->buckets[i];
        while (*pp) {
            if ((*pp)->expires_ns <= now) {
                struct kbs_session *dead = *pp;
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

size_t kbs_sessions_purge(struct kbs_sessions *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = purge_locked(s, cl_now_mono_ns());
    pthread_mutex_unlock(&s->lock);
    return n;
}

int kbs_session_create(struct kbs_sessions *s, const char *tee, char id[KBS_SESSION_ID_LEN + 1],
                       char nonce[KBS_NONCE_B64_LEN + 1], int64_t *expires_unix, struct cl_err *err)
{
    uint8_t rid[KBS_SESSION_ID_LEN / 2], rnonce[32];
    if (cl_random(rid, sizeof rid, err) < 0 || cl_random(rnonce, sizeof rnonce, err) < 0)
        return err ? err->code : CL_EIO;
    struct kbs_session *x = calloc(1, sizeof *x);
    CL_AUTO(cl_str) *hid = cl_hex_encode(rid, sizeof rid);
    CL_AUTO(cl_str) *bn = cl_b64_encode(rnonce, sizeof rnonce, CL_B64_STD);
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
static struct kbs_session *find_locked(struct kbs_sessions *s, const char *id, int *rc)
{
    if (strlen(id) != KBS_SESSION_ID_LEN) {
        *rc = CL_ENOTFOUND;
        return NULL;
    }
    struct kbs_session **pp = &s->buckets[bucket_of(s, id)];
    for (; *pp; pp = &(*pp)->next) {
        if (!cl_memeq_ct((*pp)->id, id, KBS_SESSION_ID_LEN))
            continue;
        if ((*pp)->expires_ns <= cl_now_mono_ns()) {
            struct kbs_session *dead = *pp;
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

int kbs_session_get(struct kbs_sessions *s, const char *id, struct kbs_session *out, struct cl_err *err)
{
    int rc;
    pthread_mutex_lock(&s->lock);
    struct kbs_session *x = find_locked(s, id, &rc);
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

int kbs_session_set_token(struct kbs_sessions *s, const char *id, const char *token, struct cl_err *err)
{
    int rc;
    char *copy = strdup(token);
    if (!copy)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->lock);
    struct kbs_session *x = find_locked(s, id, &rc);
    if (x) {
        free(x->token);
        x->token = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free(copy);
    return rc < 0 ? cl_err_set(err, rc, "session vanished") : 0;
}
