/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/kbs/token.c: a token the built-in attestation service minted verifies, and
 * the claims the KBS remembers for the tokens it minted are used only for that exact text,
 * only after the signature verified, and with the token's times still checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "kbs/kbs_internal.h"
#include "tee/tee.h"

struct fx {
    struct cl_store *store;
    struct cl_kbs_config cfg;
    struct cl_kbs kbs;
};

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof f);
    struct cl_err e = {0};
    f.store = cl_store_open("Memory", NULL, &e);
    struct cl_as_opts o = {.store = f.store, .allow_sample_insecure = true};
    f.kbs.as = cl_as_new(&o, &e);
    f.kbs.cfg = &f.cfg;
    cl_kbs_token_memo_init(&f.kbs);
    *state = &f;
    return f.kbs.as ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cl_kbs_token_memo_clear(&f->kbs);
    cl_as_free(f->kbs.as);
    cl_store_close(f->store);
    return 0;
}

/* A token minted for the sample TEE, and the claims the service signed in it. */
static cl_str *mint(struct fx *f, json_t **claims)
{
    struct cl_err e = {0};
    const char *text =
        "{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\"},\"additional-evidence\":\"\"}";
    CL_AUTO(json_t) *rd = cl_json_parse(text, strlen(text), 8, &e);
    uint8_t d[CL_HASH_MAX];
    size_t n = 0;
    assert_int_equal(cl_as_runtime_digest(rd, CL_HASH_SHA384, d, &n, &e), 0);
    CL_AUTO(json_t) *ev = cl_tee_sample_evidence("sample", d, n, &e);
    assert_non_null(ev);
    struct cl_as_item it = {"sample", ev, rd, CL_HASH_SHA384, NULL, 0};
    cl_str *tok = NULL;
    assert_int_equal(cl_as_evaluate_claims(f->kbs.as, &it, 1, "default", &tok, claims, &e), 0);
    return tok;
}

static void test_minted_claims(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    CL_AUTO(json_t) *signed_claims = NULL;
    CL_AUTO(cl_str) *tok = mint(f, &signed_claims);
    assert_non_null(signed_claims);

    /* not remembered: the payload is parsed, and it is what the service signed */
    CL_AUTO(json_t) *parsed = cl_kbs_token_verify(&f->kbs, tok, &e);
    assert_non_null(parsed);
    assert_true(parsed != signed_claims);
    assert_true(json_equal(parsed, signed_claims));

    /* remembered: the same object comes back */
    cl_kbs_token_remember(&f->kbs, tok, signed_claims);
    CL_AUTO(json_t) *hit = cl_kbs_token_verify(&f->kbs, tok, &e);
    assert_true(hit == signed_claims);

    /* twin: one character of the payload changed; the memo does not answer for it and the
     * signature check refuses it */
    CL_AUTO(cl_str) *bad = strdup(tok);
    char *dot = strchr(bad, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    assert_null(cl_kbs_token_verify(&f->kbs, bad, &e));
    assert_int_equal(e.code, CL_EVERIFY);

    /* twin: a second token, never remembered, is parsed, and differs (its own jti) */
    CL_AUTO(json_t) *other_claims = NULL;
    CL_AUTO(cl_str) *tok2 = mint(f, &other_claims);
    CL_AUTO(json_t) *second = cl_kbs_token_verify(&f->kbs, tok2, &e);
    assert_non_null(second);
    assert_true(second != other_claims && second != signed_claims);
    assert_false(json_equal(second, signed_claims));
}

/* Remembered claims get the same time checks as parsed ones. */
static void test_minted_times(void **state)
{
    struct fx *f = *state;
    struct cl_err e = {0};
    CL_AUTO(json_t) *claims = NULL;
    CL_AUTO(cl_str) *tok = mint(f, &claims);
    CL_AUTO(json_t) *expired = json_deep_copy(claims);
    json_object_set_new(expired, "exp", json_integer(cl_now_unix() - 3600));
    cl_kbs_token_remember(&f->kbs, tok, expired);
    assert_null(cl_kbs_token_verify(&f->kbs, tok, &e));
    assert_int_equal(e.code, CL_EEXPIRED);
    CL_AUTO(json_t) *early = json_deep_copy(claims);
    json_object_set_new(early, "nbf", json_integer(cl_now_unix() + 3600));
    cl_kbs_token_remember(&f->kbs, tok, early);
    assert_null(cl_kbs_token_verify(&f->kbs, tok, &e));
    assert_int_equal(e.code, CL_EVERIFY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minted_claims),
        cmocka_unit_test(test_minted_times),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
