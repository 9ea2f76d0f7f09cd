/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded cursor: the only way binary formats are read. Bounds are written n > left. */
#include "base/base.h"

#include <string.h>

int cl_cursor_take(struct cl_cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->len - c->off)
        return CL_EPARSE;
    *out = c->buf + c->off;
    c->off += n;
    return 0;
}

int cl_cursor_skip(struct cl_cursor *c, size_t n)
{
    const uint8_t *p;
    return cl_cursor_take(c, n, &p);
}

int cl_cursor_copy(struct cl_cursor *c, void *dst, size_t n)
{
    const uint8_t *p;
    if (cl_cursor_take(c, n, &p) < 0)
        return CL_EPARSE;
    if (n)
        memcpy(dst, p, n);
    return 0;
}

int cl_cursor_sub(struct cl_cursor *c, size_t n, struct cl_cursor *sub)
{
    const uint8_t *p;
    if (cl_cursor_take(c, n, &p) < 0)
        return CL_EPARSE;
    *sub = cl_cursor_init(p, n);
    return 0;
}

int cl_cursor_u8(struct cl_cursor *c, uint8_t *v)
{
    const uint8_t *p;
    if (cl_cursor_take(c, 1, &p) < 0)
        return CL_EPARSE;
    *v = p[0];
    return 0;
}

#define CURSOR_INT(name, type, n, expr)                                                            \
    int name(struct cl_cursor *c, type *v)                                                         \
    {                                                                                              \
        const uint8_t *p;                                                                          \
        if (cl_cursor_take(c, n, &p) < 0)                                                          \
            return CL_EPARSE;                                                                      \
        type r = 0;                                                                                \
        for (size_t i = 0; i < n; i++)                                                             \
            r |= (type)((type)p[i] << (expr));                                                     \
        *v = r;                                                                                    \
        return 0;                                                                                  \
    }

CURSOR_INT(cl_cursor_le16, uint16_t, 2, 8 * i)
CURSOR_INT(cl_cursor_le32, uint32_t, 4, 8 * i)
CURSOR_INT(cl_cursor_le64, uint64_t, 8, 8 * i)
CURSOR_INT(cl_cursor_be16, uint16_t, 2, 8 * (1 - i))
CURSOR_INT(cl_cursor_be32, uint32_t, 4, 8 * (3 - i))
CURSOR_INT(cl_cursor_be64, uint64_t, 8, 8 * (7 - i))
