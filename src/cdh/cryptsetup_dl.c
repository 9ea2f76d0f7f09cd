/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcryptsetup, loaded on first use. SecureMount is the only caller, and most guests never
 * ask for it; linked at start, libcryptsetup and its chain (libdevmapper, libblkid, libudev,
 * libselinux, libpcre2, libjson-c, libargon2, libuuid) cost the idle hub about 0.9 MiB of
 * resident memory. This file defines the libcryptsetup functions securemount.c calls, with
 * the prototypes of <libcryptsetup.h> (the compiler checks each one against the header the
 * build found with pkg-config), and forwards them to the library opened with dlopen() the
 * first time one is called. Every symbol is resolved when the library is opened, so a
 * library without one of them is refused as a whole, with its name, before any call
 * (base/lazy.h).
 */
#include "cdh/cdh_internal.h"

#include "base/lazy.h"

#include <errno.h>
#include <libcryptsetup.h>

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

static struct {
    CRYPTSETUP_FUNCS(CL_LAZY_FIELD, CL_LAZY_FIELD_V)
} cs_fn;

#define CL_LAZY_NAME cs
static const struct cl_lazysym cs_syms[] = {CRYPTSETUP_FUNCS(CL_LAZY_SYM, CL_LAZY_SYM_V)};
static struct cl_lazylib cs_lib = {.dflt = CRYPTSETUP_SONAME,
                                   .what = "libcryptsetup",
                                   .ctx = "secure mount: ",
                                   .syms = cs_syms,
                                   .nsyms = CL_ARRAY_LEN(cs_syms),
                                   .lock = PTHREAD_MUTEX_INITIALIZER};

int cl_cdh_cryptsetup_load(struct cl_err *err)
{
    return cl_lazy_load(&cs_lib, err);
}

void cl_cdh_cryptsetup_soname_set(const char *name)
{
    cl_lazy_soname_set(&cs_lib, name);
}

/* The forwarders. Callers check cl_cdh_cryptsetup_load() first for a clear error; a forwarder
 * called without it still loads the library, and answers like a failed call when it cannot. */
CRYPTSETUP_FUNCS(CL_LAZY_FORWARD, CL_LAZY_FORWARD_V)
