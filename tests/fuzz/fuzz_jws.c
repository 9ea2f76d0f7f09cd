/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: compact JWS parse + verify (cl_jws_parse, cl_jws_verify) with fixed
 * public keys (P-256, RSA-2048, Ed25519; test keys made for this harness only). The seed
 * corpus holds JWSs those keys' private halves signed, so the verify path is reached.
 * Invariant checked: a JWS verifies under at most one of the three keys.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char pub_p256[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmK2+oPw/ASAabYKVVw20gHcrTtF1\n"
                               "+5kIqySLsPwc7SZNC6tJVqW1kNYLcRaCTrqrOxZVO7BB2q5YZtdC2byefQ==\n"
                               "-----END PUBLIC KEY-----\n";

static const char pub_rsa[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuimTnMg5XdSamxSWtlk+\n"
                              "0H7jVmfDiAeMw81+N9NfK58MHK7xTDEXm3Z3778Hryvx4J9Bvfh0OQOMLlZxhQpz\n"
                              "aFU0HDB8Kx1IrAVVts3209OtLWSvGZYTflFoOdhgcbAn83SIPgE2ZZSop8invru9\n"
                              "fmP4BdmF+kY/5wYCgkIo4c/bK2UTh5xjVu2pprsHH1omCP0j0FS4IDM1XdmahHBf\n"
                              "On41t0gu4dMjrLJ+nFvDxjqxxfn4zEF4Dhvoz6+xkaq3YQi7Y9s/PuPTcGfwgQoH\n"
                              "6meDR0QgOiIrmQ64oeRaK3a316ZyHEEiKoZLcxDUbaZKztt8pre4031ERcbm2WPG\n"
                              "lwIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static const char pub_ed25519[] = "-----BEGIN PUBLIC KEY-----\n"
                                  "MCowBQYDK2VwAyEA3XZAGg8QW93J352gXp+22GeBKIaH53nKFUsR4DQUt7w=\n"
                                  "-----END PUBLIC KEY-----\n";

static cl_pkey *keys[3];

static void load_keys(void)
{
    static const char *const pems[] = {pub_p256, pub_rsa, pub_ed25519};
    for (size_t i = 0; i < CL_ARRAY_LEN(pems); i++) {
        keys[i] = cl_pkey_from_pem(pems[i], strlen(pems[i]), false, NULL);
        if (!keys[i])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys[0])
        load_keys();
    struct cl_jws jws;
    struct cl_err err = {0};
    if (cl_jws_parse((const char *)data, size, &jws, &err) < 0) {
        if (jws.header || jws.payload || jws.sig || jws.signing_input)
            abort(); /* the contract: *out zeroed on failure */
        return 0;
    }
    int verified = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
        if (cl_jws_verify(&jws, keys[i], &err) == 0)
            verified++;
    if (verified > 1)
        abort();
    cl_jws_clear(&jws);
    return 0;
}
