/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net.cidr_* builtins with OPA's semantics, which are those of Go's net package: addresses
 * parsed like netip.ParseAddr (no zones, no leading zeros in IPv4 fields), IPv4 addresses
 * held as IPv4-mapped IPv6 where Go holds them so, containment and printing as net.IPNet does
 * them (including its reading of IPv4-mapped networks), and cidr_merge producing the smallest
 * list of networks covering the union of its inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/rv.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

/* Bytes a cidr_expand result costs per address (string value and set slot), for the cap. */
#define EXPAND_COST 96

/* An address as Go's net.IP: 4 or 16 bytes. */
struct ip {
    uint8_t b[16];
    uint8_t len;
};

/* A network as Go's net.IPNet with a contiguous mask of `ones` out of mlen*8 bits. */
struct ipnet {
    struct ip ip;
    int ones;
    uint8_t mlen; /* mask bytes: 4 or 16 */
};

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- parsing (netip.ParseAddr without zones) ---- */

static bool parse_v4_fields(const char *s, size_t n, uint8_t out[4])
{
    int val = 0, pos = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (digits == 1 && val == 0)
                return false; /* leading zero */
            val = val * 10 + (s[i] - '0');
            digits++;
            if (val > 255)
                return false;
        } else if (s[i] == '.') {
            if (i == 0 || i == n - 1 || s[i - 1] == '.' || pos == 3)
                return false;
            out[pos++] = (uint8_t)val;
            val = 0;
            digits = 0;
        } else {
            return false;
        }
    }
    if (pos < 3)
        return false;
    out[3] = (uint8_t)val;
    return true;
}

static int hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool parse_v6(const char *s, size_t n, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (memchr(s, '%', n))
        return false; /* zones are refused by ParseIP and ParseCIDR */
    int ellipsis = -1, i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        ellipsis = 0;
        s += 2;
        n -= 2;
        if (n == 0)
            return true;
    }
    while (i < 16) {
        size_t off = 0;
        uint32_t acc = 0;
        for (; off < n && hexdig(s[off]) >= 0; off++) {
            acc = (acc << 4) + (uint32_t)hexdig(s[off]);
            if (off > 3 || acc > 0xffff)
                return false;
        }
        if (off == 0)
            return false;
        if (off < n && s[off] == '.') {
            if ((ellipsis < 0 && i != 12) || i + 4 > 16)
                return false;
            if (!parse_v4_fields(s, n, ip + i))
                return false;
            n = 0;
            i += 4;
            break;
        }
        ip[i] = (uint8_t)(acc >> 8);
        ip[i + 1] = (uint8_t)acc;
        i += 2;
        s += off;
        n -= off;
        if (n == 0)
            break;
        if (s[0] != ':' || n == 1)
            return false;
        s++;
        n--;
        if (s[0] == ':') {
            if (ellipsis >= 0)
                return false;
            ellipsis = i;
            s++;
            n--;
            if (n == 0)
                break;
        }
    }
    if (n != 0)
        return false;
    if (i < 16) {
        if (ellipsis < 0)
            return false;
        int k = 16 - i;
        for (int j = i - 1; j >= ellipsis; j--)
            ip[j + k] = ip[j];
        memset(ip + ellipsis, 0, (size_t)k);
    } else if (ellipsis >= 0) {
        return false;
    }
    return true;
}

/* netip.ParseAddr: the 16-byte form (IPv4 mapped) and whether the text was IPv4. */
static bool parse_addr(const char *s, size_t n, uint8_t out[16], bool *is4)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            memcpy(out, v4_prefix, 12);
            *is4 = true;
            return parse_v4_fields(s, n, out + 12);
        }
        if (s[i] == ':') {
            *is4 = false;
            return parse_v6(s, n, out);
        }
        if (s[i] == '%')
            return false;
    }
    return false;
}

/* net.ParseIP: 16 bytes */
static bool parse_ip(const struct cl_rv *v, struct ip *ip)
{
    bool is4;
    ip->len = 16;
    return parse_addr(S(v), L(v), ip->b, &is4);
}

/* net.ParseCIDR: the network (address masked; IPv4 networks hold 4 bytes). */
static bool parse_cidr(const char *s, size_t n, struct ipnet *net)
{
    const char *slash = memchr(s, '/', n);
    if (!slash)
        return false;
    uint8_t a[16];
    bool is4;
    if (!parse_addr(s, (size_t)(slash - s), a, &is4))
        return false;
    const char *m = slash + 1;
    size_t ml = (size_t)(s + n - m), i = 0;
    int bits = is4 ? 32 : 128, ones = 0;
    for (; i < ml && m[i] >= '0' && m[i] <= '9'; i++) {
        ones = ones * 10 + (m[i] - '0');
        if (ones >= 0xFFFFFF)
            return false;
    }
    if (i == 0 || i != ml || ones > bits)
        return false;
    net->ones = ones;
    net->mlen = (uint8_t)(bits / 8);
    net->ip.len = net->mlen;
    memcpy(net->ip.b, is4 ? a + 12 : a, net->mlen);
    for (int k = 0; k < bits; k++)
        if (k >= ones)
            net->ip.b[k / 8] &= (uint8_t) ~(0x80u >> (k % 8));
    return true;
}

/* ---- Go's net.IP / net.IPNet behaviour ---- */

static bool to4(const struct ip *ip, struct ip *out)
{
    if (ip->len == 4) {
        *out = *ip;
        return true;
    }
    if (ip->len == 16 && memcmp(ip->b, v4_prefix, 12) == 0) {
        out->len = 4;
        memcpy(out->b, ip->b + 12, 4);
        return true;
    }
    return false;
}

static void mask_bytes(int ones, uint8_t mlen, uint8_t m[16])
{
    memset(m, 0, 16);
    for (int k = 0; k < ones && k < mlen * 8; k++)
        m[k / 8] |= (uint8_t)(0x80u >> (k % 8));
}

/* networkNumberAndMask: false when Go would get nil */
static bool net_number_mask(const struct ipnet *n, struct ip *nn, uint8_t m[16], uint8_t *ml)
{
    if (!to4(&n->ip, nn)) {
        if (n->ip.len != 16)
            return false;
        *nn = n->ip;
    }
    uint8_t full[16];
    mask_bytes(n->ones, n->mlen, full);
    if (n->mlen == 4) {
        if (nn->len != 4)
            return false;
        memcpy(m, full, 4);
        *ml = 4;
    } else {
        if (nn->len == 4) {
            memcpy(m, full + 12, 4);
            *ml = 4;
        } else {
            memcpy(m, full, 16);
            *ml = 16;
        }
    }
    return true;
}

static bool net_contains(const struct ipnet *n, const struct ip *ip)
{
    struct ip nn, x;
    uint8_t m[16], ml;
    if (!net_number_mask(n, &nn, m, &ml))
        return false;
    if (!to4(ip, &x))
        x = *ip;
    if (x.len != nn.len)
        return false;
    for (int i = 0; i < x.len; i++)
        if ((nn.b[i] & m[i]) != (x.b[i] & m[i]))
            return false;
    return true;
}

/* net.IP.String */
static void ip_string(const struct ip *ip, struct cl_sbuf *b)
{
    struct ip v4;
    if (to4(ip, &v4)) {
        cl_sbuf_addf(b, "%u.%u.%u.%u", v4.b[0], v4.b[1], v4.b[2], v4.b[3]);
        return;
    }
    uint16_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (uint16_t)(ip->b[2 * i] << 8 | ip->b[2 * i + 1]);
    int zs = -1, ze = -1;
    for (int i = 0; i < 8; i++) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i >= 2 && j - i > ze - zs) {
            zs = i;
            ze = j;
        }
    }
    for (int i = 0; i < 8; i++) {
        if (i == zs) {
            cl_sbuf_adds(b, "::");
            i = ze;
            if (i >= 8)
                break;
        } else if (i > 0) {
            cl_sbuf_addc(b, ':');
        }
        cl_sbuf_addf(b, "%x", g[i]);
    }
}

/* net.IPNet.String */
static void net_string(const struct ipnet *n, struct cl_sbuf *b)
{
    struct ip nn;
    uint8_t m[16], ml;
    if (!net_number_mask(n, &nn, m, &ml)) {
        cl_sbuf_adds(b, "<nil>");
        return;
    }
    int ones = 0;
    for (int i = 0; i < ml * 8 && (m[i / 8] & (0x80u >> (i % 8))); i++)
        ones++;
    ip_string(&nn, b);
    cl_sbuf_addf(b, "/%d", ones);
}

static struct cl_rv *sbuf_rv(struct cl_sbuf *b)
{
    struct cl_rv *r = cl_rv_str(b->s ? b->s : "", b->len);
    cl_sbuf_free(b);
    return r;
}

/* ---- builtins ---- */

/* OPA's getNetFromOperand: every operand is reported as operand 1. */
static int get_net(struct cl_rego_bctx *c, const struct cl_rv *v, struct ipnet *n)
{
    if (v->type != CL_RV_STRING)
        return cl_rego_bi_type_error(c, 0, "string", v);
    if (!parse_cidr(S(v), L(v), n))
        return cl_rego_bi_error(c, "invalid CIDR address: %.*s", (int)(L(v) > 200 ? 200 : L(v)),
                                S(v));
    return 0;
}

/* The last address of a network, as getLastIP computes it. */
static void last_ip(const struct ipnet *n, struct ip *last)
{
    *last = n->ip;
    int bits = n->mlen * 8;
    for (int k = n->ones; k < bits; k++)
        last->b[k / 8] |= (uint8_t)(0x80u >> (k % 8));
}

/* net.cidr_contains on two values; *res gets the answer. */
static int contains(struct cl_rego_bctx *c, const struct cl_rv *a, const struct cl_rv *b, bool *res)
{
    struct ipnet na, nb;
    if (get_net(c, a, &na) < 0)
        return -1;
    if (b->type != CL_RV_STRING)
        return cl_rego_bi_type_error(c, 0, "string", b);
    struct ip ip;
    if (parse_ip(b, &ip)) {
        *res = net_contains(&na, &ip);
        return 0;
    }
    if (!parse_cidr(S(b), L(b), &nb))
        return cl_rego_bi_error(c,
                                "not a valid textual representation of an IP address or CIDR: %.*s",
                                (int)(L(b) > 200 ? 200 : L(b)), S(b));
    *res = false;
    if (net_contains(&na, &nb.ip)) {
        struct ip last;
        last_ip(&nb, &last);
        *res = net_contains(&na, &last);
    }
    return 0;
}

static int bi_cidr_contains(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    bool r = false;
    if (contains(c, a[0], a[1], &r) < 0)
        return -1;
    return OUT(cl_rv_bool(r));
}

static int bi_cidr_intersects(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct ipnet x, y;
    if (get_net(c, a[0], &x) < 0 || get_net(c, a[1], &y) < 0)
        return -1;
    return OUT(cl_rv_bool(net_contains(&x, &y.ip) || net_contains(&y, &x.ip)));
}

static int bi_cidr_is_valid(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)c;
    struct ipnet n;
    return OUT(cl_rv_bool(a[0]->type == CL_RV_STRING && parse_cidr(S(a[0]), L(a[0]), &n)));
}

static int bi_cidr_expand(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct ipnet n;
    if (!parse_cidr(S(a[0]), L(a[0]), &n))
        return cl_rego_bi_error(c, "invalid CIDR address: %.*s",
                                (int)(L(a[0]) > 200 ? 200 : L(a[0])), S(a[0]));
    int host = n.mlen * 8 - n.ones;
    if (host >= 32 || cl_rego_bi_reserve(c, ((size_t)1 << host) * EXPAND_COST) < 0) {
        if (host >= 32)
            (void)cl_rego_bi_reserve(c, SIZE_MAX / 2);
        return -2;
    }
    struct cl_rv *r = cl_rv_set();
    struct ip ip = n.ip;
    for (uint64_t k = 0; k < ((uint64_t)1 << host); k++) {
        struct cl_sbuf b = {0};
        ip_string(&ip, &b);
        cl_rv_set_add(r, sbuf_rv(&b));
        for (int j = ip.len - 1; j >= 0; j--)
            if (++ip.b[j] != 0)
                break;
    }
    return OUT(r);
}

/* One element of a cidr_contains_matches operand: a string, or the first member of a
 * non-empty array. */
static int match_term(struct cl_rego_bctx *c, int operand, const struct cl_rv *v,
                      const struct cl_rv **cidr)
{
    if (v->type == CL_RV_STRING) {
        *cidr = v;
        return 0;
    }
    if (v->type == CL_RV_ARRAY && v->u.arr.len > 0) {
        *cidr = v->u.arr.items[0];
        return 0;
    }
    return cl_rego_bi_error(c, "operand %d: element must be string or non-empty array", operand);
}

/* Members (cidr, index) of an operand: a string is its own index; array elements are indexed
 * by position, set elements by themselves, object values by their keys. */
static size_t match_count(const struct cl_rv *v)
{
    switch (v->type) {
    case CL_RV_STRING:
        return 1;
    case CL_RV_ARRAY:
    case CL_RV_SET:
        return v->u.arr.len;
    case CL_RV_OBJECT:
        return v->u.obj.len;
    default:
        return 0;
    }
}

static int match_member(struct cl_rego_bctx *c, int operand, struct cl_rv *v, size_t i,
                        const struct cl_rv **cidr, struct cl_rv **index)
{
    switch (v->type) {
    case CL_RV_STRING:
        *cidr = v;
        *index = cl_rv_incref(v);
        return 0;
    case CL_RV_ARRAY:
        if (match_term(c, operand, v->u.arr.items[i], cidr) < 0)
            return -1;
        *index = cl_rv_int((int64_t)i);
        return 0;
    case CL_RV_SET:
        if (match_term(c, operand, v->u.arr.items[i], cidr) < 0)
            return -1;
        *index = cl_rv_incref(v->u.arr.items[i]);
        return 0;
    default:
        if (match_term(c, operand, v->u.obj.vals[i], cidr) < 0)
            return -1;
        *index = cl_rv_incref(v->u.obj.keys[i]);
        return 0;
    }
}

static int bi_cidr_contains_matches(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                    struct cl_rv **out)
{
    struct cl_rv *r = cl_rv_set();
    size_t n1 = match_count(a[0]), n2 = match_count(a[1]);
    for (size_t i = 0; i < n1; i++) {
        const struct cl_rv *c1 = NULL;
        struct cl_rv *i1 = NULL;
        if (match_member(c, 1, a[0], i, &c1, &i1) < 0)
            goto fail;
        for (size_t j = 0; j < n2; j++) {
            const struct cl_rv *c2 = NULL;
            struct cl_rv *i2 = NULL;
            bool hit = false;
            if (match_member(c, 2, a[1], j, &c2, &i2) < 0 || contains(c, c1, c2, &hit) < 0) {
                cl_rv_decref(i1);
                cl_rv_decref(i2);
                goto fail;
            }
            if (hit) {
                if (cl_rego_bi_reserve(c, 128) < 0) {
                    cl_rv_decref(i1);
                    cl_rv_decref(i2);
                    goto fail;
                }
                struct cl_rv *pair = cl_rv_array(2);
                cl_rv_array_push(pair, cl_rv_incref(i1));
                cl_rv_array_push(pair, i2);
                cl_rv_set_add(r, pair);
            } else {
                cl_rv_decref(i2);
            }
        }
        cl_rv_decref(i1);
    }
    return OUT(r);
fail:
    cl_rv_decref(r);
    return -1;
}

/* ---- cidr_merge ---- */

struct range {
    uint8_t first[16], last[16]; /* IPv4 as IPv4-mapped */
    struct ipnet net;            /* the input network while the range is not merged */
    bool merged, dead;
};

/* Network of a merge input: a CIDR, or an IPv4 address with its classful default mask. */
static int merge_input(struct cl_rego_bctx *c, const struct cl_rv *v, struct range *r)
{
    if (v->type != CL_RV_STRING)
        return cl_rego_bi_error(c, "element must be string");
    memset(r, 0, sizeof *r);
    struct ip ip, v4;
    if (parse_ip(v, &ip)) {
        if (!to4(&ip, &v4))
            return cl_rego_bi_error(c, "IPv6 invalid: needs prefix length");
        r->net.ip = ip; /* Go keeps the address unmasked: it prints as given */
        r->net.mlen = 4;
        r->net.ones = v4.b[0] < 0x80 ? 8 : v4.b[0] < 0xC0 ? 16 : 24;
    } else if (!parse_cidr(S(v), L(v), &r->net)) {
        return cl_rego_bi_error(c, "invalid CIDR address: %.*s", (int)(L(v) > 200 ? 200 : L(v)),
                                S(v));
    }
    /* first/last: the address masked, in 16 bytes */
    struct ip a = r->net.ip;
    if (r->net.mlen == 4 && to4(&a, &v4)) {
        memcpy(r->first, v4_prefix, 12);
        memcpy(r->first + 12, v4.b, 4);
    } else {
        memcpy(r->first, a.b, 16);
    }
    int off = r->net.mlen == 4 ? 96 : 0;
    memcpy(r->last, r->first, 16);
    for (int k = off + r->net.ones; k < 128; k++) {
        r->first[k / 8] &= (uint8_t) ~(0x80u >> (k % 8));
        r->last[k / 8] |= (uint8_t)(0x80u >> (k % 8));
    }
    return 0;
}

static int range_cmp(const void *x, const void *y)
{
    const struct range *a = x, *b = y;
    int r = memcmp(a->last, b->last, 16);
    return r ? r : memcmp(a->first, b->first, 16);
}

/* a + delta (+1 / -1) on 128 bits; false on wrap-around */
static bool step128(uint8_t a[16], int delta)
{
    for (int i = 15; i >= 0; i--) {
        uint8_t old = a[i];
        a[i] = (uint8_t)(a[i] + delta);
        if ((delta > 0 && old != 0xff) || (delta < 0 && old != 0))
            return true;
    }
    return false;
}

/* Appends the smallest list of networks covering [first, last] to the set. */
static void range_cidrs(const struct range *r, struct cl_rv *set)
{
    bool v4 = memcmp(r->first, v4_prefix, 12) == 0 && memcmp(r->last, v4_prefix, 12) == 0;
    int base = v4 ? 96 : 0;
    uint8_t cur[16];
    memcpy(cur, r->first, 16);
    for (;;) {
        /* the largest block starting at cur, aligned, ending at or before last */
        int ones = 128;
        while (ones > base) {
            int k = ones - 1; /* try clearing bit k: block of 2^(128-k) addresses */
            if (cur[k / 8] & (0x80u >> (k % 8)))
                break; /* not aligned */
            uint8_t end[16];
            memcpy(end, cur, 16);
            for (int j = k; j < 128; j++)
                end[j / 8] |= (uint8_t)(0x80u >> (j % 8));
            if (memcmp(end, r->last, 16) > 0)
                break;
            ones = k;
        }
        struct ipnet n = {.ones = ones - base, .mlen = v4 ? 4 : 16};
        n.ip.len = n.mlen;
        memcpy(n.ip.b, v4 ? cur + 12 : cur, n.mlen);
        struct cl_sbuf b = {0};
        net_string(&n, &b);
        cl_rv_set_add(set, sbuf_rv(&b));
        uint8_t end[16];
        memcpy(end, cur, 16);
        for (int j = ones; j < 128; j++)
            end[j / 8] |= (uint8_t)(0x80u >> (j % 8));
        if (memcmp(end, r->last, 16) >= 0 || !step128(end, 1))
            break;
        memcpy(cur, end, 16);
    }
}

static int bi_cidr_merge(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (a[0]->type != CL_RV_ARRAY && a[0]->type != CL_RV_SET)
        return cl_rego_bi_error(c, "operand must be an array");
    size_t n = a[0]->u.arr.len;
    if (cl_rego_bi_reserve(c, n * (sizeof(struct range) + 128 * 64)) < 0)
        return -2;
    struct range *rs = cl_xcalloc(n + 1, sizeof *rs);
    for (size_t i = 0; i < n; i++)
        if (merge_input(c, a[0]->u.arr.items[i], &rs[i]) < 0) {
            free(rs);
            return -1;
        }
    qsort(rs, n, sizeof *rs, range_cmp);
    /* from the end: a range starting at or before the address after the previous one's end
     * joins it */
    for (size_t i = n; i-- > 1;) {
        uint8_t prev[16];
        memcpy(prev, rs[i].first, 16);
        bool zero = memcmp(prev, v4_prefix, 12) == 0
                        ? !memcmp(prev + 12, "\0\0\0\0", 4)
                        : !memcmp(prev, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        if (!zero)
            (void)step128(prev, -1);
        if (memcmp(prev, rs[i - 1].last, 16) <= 0) {
            if (memcmp(rs[i].first, rs[i - 1].first, 16) < 0)
                memcpy(rs[i - 1].first, rs[i].first, 16);
            memcpy(rs[i - 1].last, rs[i].last, 16);
            rs[i - 1].merged = true;
            rs[i].dead = true;
        }
    }
    struct cl_rv *r = cl_rv_set();
    for (size_t i = 0; i < n; i++) {
        if (rs[i].dead)
            continue;
        if (rs[i].merged) {
            range_cidrs(&rs[i], r);
        } else {
            struct cl_sbuf b = {0};
            net_string(&rs[i].net, &b);
            cl_rv_set_add(r, sbuf_rv(&b));
        }
    }
    free(rs);
    return OUT(r);
}

const struct cl_rego_builtin cl_rego_builtins_net[] = {
    {"net.cidr_contains", 2, bi_cidr_contains, 0},
    {"net.cidr_intersects", 2, bi_cidr_intersects, 0},
    {"net.cidr_is_valid", 1, bi_cidr_is_valid, 0},
    {"net.cidr_expand", 1, bi_cidr_expand, 0},
    {"net.cidr_contains_matches", 2, bi_cidr_contains_matches, 0},
    {"net.cidr_merge", 1, bi_cidr_merge, 0},
    {NULL, 0, NULL, 0},
};
