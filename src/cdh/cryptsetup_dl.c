/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcryptsetup, loaded on first use. SecureMount is the only caller, and most guests never
 * ask for it; linked at start, libcryptsetup and its chain (libdevmapper, libblkid, libudev,
 * libselinux, libpcre2, libjson-c, libargon2, libuuid) cost the idle hub about 0.9 MiB of
 * resident memory. This file defines the libcryptsetup functions securemount.c calls, with
 * the prototypes of <libcryptsetup.h> (the compiler checks each one against the header the
 * build found with pkg-config), and forwards them to the library opened with dlopen() the
 * first time one is called. Every symbol is resolved when the library is opened, so a
 * library without one of them is refused as a whole, with its name, before any call.
 */
#include "cdh/cdh_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <libcryptsetup.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The ABI <libcryptsetup.h> describes (Debian 12: libcryptsetup12). */
#define CRYPTSETUP_SONAME "libcryptsetup.so.12"

/* X(return type, name, parameters, arguments, value when the library is missing);
 * V(name, parameters, arguments) for functions returning nothing. */
#define CRYPTSETUP_FUNCS(X, V)                                                                     \
    X(int, crypt_init, (struct crypt_device * *cd, const char *device), (cd, device), -ENOSYS)     \
    X(int, crypt_init_data_device,                                                                 \
      (struct crypt_device * *cd, const char *device, const char *data_device),                    \
      (cd, device, data_device), -ENOSYS)                                                          \
    X(int, crypt_set_pbkdf_type, (struct crypt_device * cd, const struct crypt_pbkdf_type *pbkdf), \
      (cd, pbkdf), -ENOSYS)                                                                        \
    X(int, crypt_format,                                                                           \
      (struct crypt_device * cd, const char *type, const char *cipher, const char *cipher_mode,    \
       const char *uuid, const char *volume_key, size_t volume_key_size, void *params),            \
      (cd, type, cipher, cipher_mode, uuid, volume_key, volume_key_size, params), -ENOSYS)         \
    X(int, crypt_keyslot_add_by_volume_key,                                                        \
      (struct crypt_device * cd, int keyslot, const char *volume_key, size_t volume_key_size,      \
       const char *passphrase, size_t passphrase_size),                                            \
      (cd, keyslot, volume_key, volume_key_size, passphrase, passphrase_size), -ENOSYS)            \
    X(int, crypt_load, (struct crypt_device * cd, const char *requested_type, void *params),       \
      (cd, requested_type, params), -ENOSYS)                                                       \
    X(const char *, crypt_get_cipher, (struct crypt_device * cd), (cd), NULL)                      \
    X(const char *, crypt_get_cipher_mode, (struct crypt_device * cd), (cd), NULL)                 \
    X(int, crypt_get_sector_size, (struct crypt_device * cd), (cd), 0)                             \
    X(int, crypt_activate_by_passphrase,                                                           \
      (struct crypt_device * cd, const char *name, int keyslot, const char *passphrase,            \
       size_t passphrase_size, uint32_t flags),                                                    \
      (cd, name, keyslot, passphrase, passphrase_size, flags), -ENOSYS)                            \
    V(crypt_free, (struct crypt_device * cd), (cd))                                                \
    V(crypt_set_log_callback,                                                                      \
      (struct crypt_device * cd, void (*log)(int level, const char *msg, void *usrptr),            \
       void *usrptr),                                                                              \
      (cd, log, usrptr))

/* the function table (fn) changes only when every symbol of a library is there: a forwarder
 * never sees a NULL */
#define FIELD(ret, name, params, args, ...) __typeof__(&name) name;
#define FIELD_V(name, params, args) __typeof__(&name) name;
struct funcs {
    CRYPTSETUP_FUNCS(FIELD, FIELD_V)
};
static struct funcs fn;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool ready; /* read without the lock: __atomic */
static const char *soname = CRYPTSETUP_SONAME;

/* Points *slot (a function pointer) at name in h; the first missing name is kept. */
static void resolve(void *h, const char *name, void *slot, size_t size, const char **missing)
{
    void *p = dlsym(h, name);
    if (!p && !*missing)
        *missing = name;
    memcpy(slot, &p, size); /* POSIX: a dlsym() result converts to a function pointer */
}

int cl_cdh_cryptsetup_load(struct cl_err *err)
{
    if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&lock);
    int rc = 0;
    if (!ready) {
        void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        const char *missing = NULL;
        if (!h) {
            const char *why = dlerror();
            rc = cl_err_set(err, CL_EUNSUPPORTED,
                            "secure mount needs %s (libcryptsetup), which cannot be loaded: %s",
                            soname, why ? why : "unknown reason");
        } else {
            struct funcs got;
#define RESOLVE(ret, name, params, args, ...)                                                      \
    resolve(h, #name, &got.name, sizeof got.name, &missing);
#define RESOLVE_V(name, params, args) resolve(h, #name, &got.name, sizeof got.name, &missing);
            CRYPTSETUP_FUNCS(RESOLVE, RESOLVE_V)
            if (missing) {
                rc = cl_err_set(err, CL_EUNSUPPORTED,
                                "secure mount: %s has no %s (not the ABI this build expects)",
                                soname, missing);
                dlclose(h);
            } else {
                fn = got;
                __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void cl_cdh_cryptsetup_soname_set(const char *name)
{
    pthread_mutex_lock(&lock);
    soname = name ? name : CRYPTSETUP_SONAME;
    /* a library already open stays mapped (its functions may be running); the next call
     * opens the new name */
    __atomic_store_n(&ready, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
}

/* The forwarders. Callers check cl_cdh_cryptsetup_load() first for a clear error; a forwarder
 * called without it still loads the library, and answers like a failed call when it cannot. */
#define FORWARD(ret, name, params, args, fail)                                                     \
    ret(name) params                                                                               \
    {                                                                                              \
        if (cl_cdh_cryptsetup_load(NULL) < 0)                                                      \
            return fail;                                                                           \
        return fn.name args;                                                                       \
    }
#define FORWARD_V(name, params, args)                                                              \
    void(name) params                                                                              \
    {                                                                                              \
        if (cl_cdh_cryptsetup_load(NULL) == 0)                                                     \
            fn.name args;                                                                          \
    }
CRYPTSETUP_FUNCS(FORWARD, FORWARD_V)
