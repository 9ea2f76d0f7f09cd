/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The connection pool of the shared backends (Postgres, Redis), private to src/store: n slots,
 * each free or taken; a caller waits for a free slot at most timeout_ms. The backend keeps its
 * connections in an array of its own, indexed by slot.
 */
#ifndef CL_STORE_POOL_H
#define CL_STORE_POOL_H

#include <pthread.h>

#include "base/base.h"

struct cl_store_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    bool *busy;
    size_t n;
    unsigned timeout_ms;
    const char *what; /* backend name for messages, borrowed (a literal) */
};

/* 0, or ENOMEM with err. */
CL_MUST_CHECK int cl_store_pool_init(struct cl_store_pool *p, size_t n, unsigned timeout_ms,
                                     const char *what, struct cl_err *err);
/* Safe on a pool zeroed and never initialised. */
void cl_store_pool_destroy(struct cl_store_pool *p);
/* Takes a free slot: its index (>= 0), or EIO with err after timeout_ms. */
CL_MUST_CHECK long cl_store_pool_take(struct cl_store_pool *p, struct cl_err *err);
/* Gives slot i back and wakes one waiter. */
void cl_store_pool_give(struct cl_store_pool *p, size_t i);

#endif
