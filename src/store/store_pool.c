/* SPDX-License-Identifier: Apache-2.0 */
/* The shared backends' connection pool: slots under one mutex, a condition for waiters. */
#include "store/store_pool.h"

#include <errno.h>
#include <time.h>

int cl_store_pool_init(struct cl_store_pool *p, size_t n, unsigned timeout_ms, const char *what,
                       struct cl_err *err)
{
    *p = (struct cl_store_pool){.n = n, .timeout_ms = timeout_ms, .what = what};
    p->busy = calloc(n ? n : 1, sizeof *p->busy);
    if (!p->busy)
        return cl_err_set(err, CL_ENOMEM, "%s: out of memory", what);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    return 0;
}

void cl_store_pool_destroy(struct cl_store_pool *p)
{
    if (!p->busy)
        return;
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->busy);
    p->busy = NULL;
}

long cl_store_pool_take(struct cl_store_pool *p, struct cl_err *err)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += p->timeout_ms / 1000;
    dl.tv_nsec += (long)(p->timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (size_t i = 0; i < p->n; i++) {
            if (!p->busy[i]) {
                p->busy[i] = true;
                pthread_mutex_unlock(&p->lock);
                return (long)i;
            }
        }
        if (pthread_cond_timedwait(&p->freed, &p->lock, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            return cl_err_set(err, CL_EIO, "%s: no free pooled connection within %u ms", p->what,
                              p->timeout_ms);
        }
    }
}

void cl_store_pool_give(struct cl_store_pool *p, size_t i)
{
    pthread_mutex_lock(&p->lock);
    p->busy[i] = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}
