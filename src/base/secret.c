/* SPDX-License-Identifier: Apache-2.0 */
/* The secret type (wiped on free) and constant-time comparison. */
#include "base/base.h"

#include <string.h>

void cl_auto_cl_str(cl_str **p)
{
    free(*p);
    *p = NULL;
}

void cl_auto_cl_bytes(cl_bytes **p)
{
    free(*p);
    *p = NULL;
}

struct cl_secret *cl_secret_new(size_t len)
{
    struct cl_secret *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->data = calloc(1, len ? len : 1);
    if (!s->data) {
        free(s);
        return NULL;
    }
    s->len = len;
    return s;
}

struct cl_secret *cl_secret_from(const void *buf, size_t len)
{
    struct cl_secret *s = cl_secret_new(len);
    if (s && len)
        memcpy(s->data, buf, len);
    return s;
}

void cl_secret_free(struct cl_secret *s)
{
    if (!s)
        return;
    cl_free_wipe(s->data, s->len);
    free(s);
}

void cl_auto_cl_secret(struct cl_secret **p)
{
    cl_secret_free(*p);
    *p = NULL;
}

bool cl_memeq_ct(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= (uint8_t)(x[i] ^ y[i]);
    return acc == 0;
}

void cl_free_wipe(void *p, size_t len)
{
    if (!p)
        return;
    explicit_bzero(p, len);
    free(p);
}
