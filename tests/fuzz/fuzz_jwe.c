/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: flattened JWE decryption (cl_jwe_decrypt) with fixed private keys
 * (P-256, P-521, RSA-2048; test keys made for this harness only, never used elsewhere). The
 * seed corpus holds JWEs sealed to these keys, so unwrap and GCM are reached. Invariant
 * checked: an input opens under at most one key.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char priv_p256[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJvKZliMFmuePSZQx\n"
                                "7tV2zk9dmacgpD+W9tbIddTRhcmhRANCAASYrb6g/D8BIBptgpVXDbSAdytO0XX7\n"
                                "mQirJIuw/BztJk0Lq0lWpbWQ1gtxFoJOuqs7FlU7sEHarlhm10LZvJ59\n"
                                "-----END PRIVATE KEY-----\n";

static const char priv_p521[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIAGdvvTZ1u0+SUo0da\n"
                                "nqgozq6BaBlZM6wJ7naiqOQOF5DC8zzAmm4XTSgEfFbP997BsJ8yz+ny0FhQEYrd\n"
                                "vs+oXjOhgYkDgYYABAD8W8mmVXL8MxLS+vIiSzCBYafUKwwz9wicgtwrJ7Vz0Cvo\n"
                                "fdQ0UyD6RiM821ffel7r12O6k2vEhhLqHfk8M2tizgDOo23Ax8a8Qjwfdwqqdzdv\n"
                                "AbFcCNKmgY7sN2a7FESqT//X6jzjTQ8bf4rpZoOLCrv3sOwrShQzuPR8n20zyuvh\n"
                                "aA==\n"
                                "-----END PRIVATE KEY-----\n";

static const char priv_rsa[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC6KZOcyDld1Jqb\n"
                               "FJa2WT7QfuNWZ8OIB4zDzX43018rnwwcrvFMMRebdnfvvwevK/Hgn0G9+HQ5A4wu\n"
                               "VnGFCnNoVTQcMHwrHUisBVW2zfbT060tZK8ZlhN+UWg52GBxsCfzdIg+ATZllKin\n"
                               "yKe+u71+Y/gF2YX6Rj/nBgKCQijhz9srZROHnGNW7ammuwcfWiYI/SPQVLggMzVd\n"
                               "2ZqEcF86fjW3SC7h0yOssn6cW8PGOrHF+fjMQXgOG+jPr7GRqrdhCLtj2z8+49Nw\n"
                               "Z/CBCgfqZ4NHRCA6IiuZDrih5FordrfXpnIcQSIqhktzENRtpkrO23ymt7jTfURF\n"
                               "xubZY8aXAgMBAAECggEAKcNzDKy0hfLQvnLHfuAVofOdb8B2krlS4IhkxQRj6ObU\n"
                               "8khi9LtctvFEZeIeyLMcn85KkuI+vJ2poKme7QBTtLfMqXhNGuUGbSUDPjAFrC7k\n"
                               "PndEewJ6nA+KSNPcixTAWbMub26ZM/++OGnhC/6VO9oUhcdvcZ657kugW3WZM1Mq\n"
                               "j7rLDx3sI58Ml1nRZk506QzahU6imChpK62BIlI8FP6ysg3SzL5aFknks1P5wD9F\n"
                               "q9n1dTKjkyylPGfr1o4lt9NVyrOmK9c7fE+h4Yf8f2Uc3XJMRrEA9WNgbl769Hm+\n"
                               "OxT6UkgdH2/oWqBEjDXAxTVpreNrIPJ9QJ78s2KztQKBgQDoA15cAg2P75MYVkXL\n"
                               "UeWskzuJn8VHG25TTOl2sZiEimiGoJbsfy7w/S/rZkDh9Wv+Az3VzPx2vxq578lP\n"
                               "D/e3TlVjL1fAHmwXmmY9AOjpYwcEWh9qHYEfkXZr/wg3v7KwCONtwUQw3oRZiSk0\n"
                               "IhnihXoE6676xurHDSMAg7B8lQKBgQDNaLAxDOSedjYueg6KvNrqCYTFsNcuP0gy\n"
                               "3XKcgl3/fijcJYJ8CQldXCaCXr3W9JR6VW//UTVxVzgg1Lf8ez1XtUjDfRINBrDf\n"
                               "zvPmGNFLHUQpdV9BX4wZBVoFD0/mtQ7hkLOnEOsj9MyOAMX5dCOqcbid4j6JViuz\n"
                               "3e2gEiJ/ewKBgFDoS9F+Dcix3PPRsgkTCCrENTDq/FqtoC2AVrHDgNJHiefYvIjA\n"
                               "WVhEkp9eSyYA9aXg74FNOIUYY3OPwP3HLbVIpdIuwkUG1t7sQtbnKFGq7NmBrA7P\n"
                               "NyYRDeDfULhQKznj/5tYmDUKg9DNWgcKFUi/DywEHELrdxfu5tPZGIR5AoGBAMnM\n"
                               "XLSDpyLqncZBUYIJkcQ1f8Q8PNqJfyPBnTSXe0NjLT9CdpPmyNV4j7iq3TSN6kTZ\n"
                               "JQOfQ7LK7jCK6wpYBObjCc5MVGyJs0Ddb44RuaRi5zEXx3JRLTDzqgGojmXoYOtH\n"
                               "nse1/ly/xiqIJfcxm0x7FtW9jJSeHKdDk40b49p7AoGBAOO+RH0SmLu2TuC3TMHS\n"
                               "3/l+sK6oO4o5NRnWm9e5BBIFy6eRiGlWQkulgdURlXFNLEye/5FsevJs7TMSsWOU\n"
                               "L33uuU98f378/TXDOHJ/74je6T9LXGNkyCC/O08L9NmK3Yh69HJrKvSl9N9jUoQl\n"
                               "0FiZHb4cKJfMEk9pvbpLsPLB\n"
                               "-----END PRIVATE KEY-----\n";

static cl_pkey *keys[3];

static void load_keys(void)
{
    static const char *const pems[] = {priv_p256, priv_p521, priv_rsa};
    cl_log_set_level(CL_LOG_ERROR); /* RSA1_5 inputs warn on every run */
    for (size_t i = 0; i < CL_ARRAY_LEN(pems); i++) {
        keys[i] = cl_pkey_from_pem(pems[i], strlen(pems[i]), true, NULL);
        if (!keys[i])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys[0])
        load_keys();
    json_t *jwe = cl_json_parse((const char *)data, size, CL_JSON_MAX_DEPTH, NULL);
    if (!jwe)
        return 0;
    int opened = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++) {
        struct cl_err err = {0};
        struct cl_secret *pt = cl_jwe_decrypt(jwe, keys[i], &err);
        if (pt) {
            opened++;
            cl_secret_free(pt);
        } else if (err.code == 0 || err.msg[0] == '\0') {
            abort(); /* every refusal names its reason */
        }
    }
    if (opened > 1)
        abort();
    json_decref(jwe);
    return 0;
}
