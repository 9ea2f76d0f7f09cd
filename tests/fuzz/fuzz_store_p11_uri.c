/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: the RFC 7512 PKCS#11 URI of a key-encryption key (store_p11.c). Whatever the
 * text, the parser accepts it whole or refuses it with a message; an accepted URI has a token
 * and an object label, a module path, no NUL inside a field, and the PIN never appears in a
 * refusal's message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_p11.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    struct cl_store_p11_uri u;
    memset(&u, 0x5a, sizeof u);
    struct cl_err err = {0};
    int rc = cl_store_p11_uri_parse(s, &u, &err);
    if (rc == 0) {
        CHECK(cl_store_p11_is_uri(s));
        CHECK(u.token[0] && strlen(u.token) <= CL_STORE_P11_MAX_LABEL);
        CHECK(u.object[0] && strlen(u.object) <= CL_STORE_P11_MAX_LABEL);
        CHECK(u.module[0] && strnlen(u.module, sizeof u.module) < sizeof u.module);
        CHECK(u.idlen <= CL_STORE_P11_MAX_ID);
        CHECK(strnlen(u.pin_source, sizeof u.pin_source) < sizeof u.pin_source);
        CHECK(strnlen(u.pin_value, sizeof u.pin_value) < sizeof u.pin_value);
        CHECK(u.has_pin_value || u.pin_value[0] == '\0');
        explicit_bzero(&u, sizeof u);
    } else {
        CHECK(rc < 0 && err.code == rc && err.msg[0]);
        /* the PIN given in the text never comes back in the message */
        const char *pin = strstr(s, "pin-value=");
        if (pin) {
            pin += strlen("pin-value=");
            size_t n = strcspn(pin, "&");
            char p[64];
            snprintf(p, sizeof p, "%.*s", (int)(n < 63 ? n : 63), pin);
            /* a PIN of 6+ digits whose text occurs nowhere else in the input (an attribute
             * name may hold it, and messages quote names) */
            bool digits = n >= 6 && n < 63 && strspn(p, "0123456789") == n;
            if (digits && strstr(s, p) == pin && !strstr(pin + 1, p))
                CHECK(!strstr(err.msg, p));
        }
    }
    free(s);
    return 0;
}
