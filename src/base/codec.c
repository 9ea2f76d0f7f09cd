/* SPDX-License-Identifier: Apache-2.0 */
/* base64 (standard and url-safe) and hex. Decoders are strict by default: wrong alphabet,
 * wrong padding and non-zero trailing bits are refused, naming the offset. */
#include "base/base.h"

#include <pthread.h>
#include <string.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

cl_str *cl_b64_encode(const void *buf, size_t len, enum cl_b64 variant)
{
    const uint8_t *in = buf;
    const char *al = variant == CL_B64_STD ? b64_std : b64_url;
    bool pad = variant == CL_B64_STD;
    size_t outlen = (len / 3) * 4 + 4 + 1;
    if (len > SIZE_MAX / 2)
        return NULL;
    char *out = malloc(outlen);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        out[o++] = al[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Decoding tables: 0..63, or 0xff for a character outside the alphabet. Built once. */
static uint8_t tab_std[256], tab_url[256], tab_any[256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    memset(tab_std, 0xff, sizeof tab_std);
    memset(tab_url, 0xff, sizeof tab_url);
    memset(tab_any, 0xff, sizeof tab_any);
    for (int i = 0; i < 64; i++) {
        tab_std[(uint8_t)b64_std[i]] = (uint8_t)i;
        tab_url[(uint8_t)b64_url[i]] = (uint8_t)i;
        tab_any[(uint8_t)b64_std[i]] = (uint8_t)i;
        tab_any[(uint8_t)b64_url[i]] = (uint8_t)i;
    }
}

static const uint8_t *b64_table(enum cl_b64 variant)
{
    pthread_once(&tab_once, tab_init);
    return variant == CL_B64_STD ? tab_std : variant == CL_B64_ANY ? tab_any : tab_url;
}

/* Decodes into out (capacity >= slen*3/4+3); returns the decoded length or <0. */
static int b64_decode_into(const char *s, size_t slen, enum cl_b64 variant, uint8_t *out,
                           size_t *outlen, struct cl_err *err)
{
    size_t body = slen;
    while (body > 0 && s[body - 1] == '=')
        body--;
    size_t npad = slen - body;
    if (npad > 0 && variant == CL_B64_URL)
        return cl_err_set(err, CL_EPARSE, "base64url: padding '=' not allowed (offset %zu)", body);
    if (npad > 2)
        return cl_err_set(err, CL_EPARSE, "base64: too much padding");
    if (body % 4 == 1)
        return cl_err_set(err, CL_EPARSE, "base64: impossible length %zu", slen);
    if (variant == CL_B64_STD && slen % 4 != 0)
        return cl_err_set(err, CL_EPARSE, "base64: length %zu is not a multiple of 4", slen);
    if (npad > 0 && (body + npad) % 4 != 0)
        return cl_err_set(err, CL_EPARSE, "base64: wrong padding");
    const uint8_t *tab = b64_table(variant);
    const uint8_t *in = (const uint8_t *)s;
    size_t o = 0, i = 0;
    /* whole quanta: 4 characters → 3 bytes */
    for (; body - i >= 4; i += 4) {
        uint8_t a = tab[in[i]], b = tab[in[i + 1]], c = tab[in[i + 2]], d = tab[in[i + 3]];
        if ((a | b | c | d) == 0xff) {
            size_t bad = i + (a == 0xff ? 0 : b == 0xff ? 1 : c == 0xff ? 2 : 3);
            return cl_err_set(err, CL_EPARSE, "base64: invalid character at offset %zu", bad);
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    /* tail of 2 or 3 characters (1 is impossible, checked above) */
    uint32_t acc = 0;
    int bits = 0;
    for (; i < body; i++) {
        uint8_t v = tab[in[i]];
        if (v == 0xff)
            return cl_err_set(err, CL_EPARSE, "base64: invalid character at offset %zu", i);
        acc = acc << 6 | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return cl_err_set(err, CL_EPARSE, "base64: non-zero trailing bits");
    *outlen = o;
    return 0;
}

cl_bytes *cl_b64_decode(const char *s, size_t slen, enum cl_b64 variant, size_t max, size_t *outlen,
                        struct cl_err *err)
{
    if (slen / 4 * 3 > max + 3 || slen > SIZE_MAX / 2) {
        cl_err_set(err, CL_ELIMIT, "base64: input of %zu characters exceeds the %zu-byte limit",
                   slen, max);
        return NULL;
    }
    uint8_t *out = malloc(slen / 4 * 3 + 4);
    if (!out) {
        cl_err_set(err, CL_ENOMEM, "base64: out of memory");
        return NULL;
    }
    size_t n = 0;
    if (b64_decode_into(s, slen, variant, out, &n, err) < 0) {
        free(out);
        return NULL;
    }
    if (n > max) {
        free(out);
        cl_err_set(err, CL_ELIMIT, "base64: decoded %zu bytes exceeds the %zu-byte limit", n, max);
        return NULL;
    }
    out[n] = 0;
    *outlen = n;
    return out;
}

struct cl_secret *cl_b64_decode_secret(const char *s, size_t slen, enum cl_b64 variant,
                                       struct cl_err *err)
{
    struct cl_secret *sec = cl_secret_new(slen / 4 * 3 + 4);
    if (!sec) {
        cl_err_set(err, CL_ENOMEM, "base64: out of memory");
        return NULL;
    }
    size_t n = 0;
    if (b64_decode_into(s, slen, variant, sec->data, &n, err) < 0) {
        cl_secret_free(sec);
        return NULL;
    }
    sec->len = n; /* cl_secret_free wipes len bytes; the unused tail was never written */
    return sec;
}

void cl_hex_encode_to(const void *buf, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *in = buf;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[len * 2] = '\0';
}

cl_str *cl_hex_encode(const void *buf, size_t len)
{
    if (len > SIZE_MAX / 2 - 1)
        return NULL;
    char *out = malloc(len * 2 + 1);
    if (out)
        cl_hex_encode_to(buf, len, out);
    return out;
}

int cl_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cl_hex_decode(const char *s, size_t slen, uint8_t *out, size_t outcap, size_t *outlen,
                  struct cl_err *err)
{
    if (slen % 2)
        return cl_err_set(err, CL_EPARSE, "hex: odd length %zu", slen);
    if (slen / 2 > outcap)
        return cl_err_set(err, CL_ELIMIT, "hex: %zu bytes exceed the %zu-byte field", slen / 2,
                          outcap);
    for (size_t i = 0; i < slen; i += 2) {
        int hi = cl_hex_digit(s[i]), lo = cl_hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return cl_err_set(err, CL_EPARSE, "hex: invalid character at offset %zu",
                              hi < 0 ? i : i + 1);
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *outlen = slen / 2;
    return 0;
}

cl_str *cl_pct_decode(const char *s, size_t slen, size_t *outlen)
{
    cl_str *out = malloc(slen + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < slen; i++) {
        int hi = -1, lo = -1;
        if (s[i] == '%' && slen - i > 2) {
            hi = cl_hex_digit(s[i + 1]);
            lo = cl_hex_digit(s[i + 2]);
        }
        if (hi >= 0 && lo >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return out;
}

size_t cl_utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        len = 1, v = c, min = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    if (cp)
        *cp = v;
    return len;
}
