/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key-encryption key of encryption at rest on a PKCS#11 token: an RFC 7512 URI parsed with
 * bounds, the module dlopen'ed from its module-path (C_Initialize once per module, with
 * CKF_OS_LOCKING_OK, C_Finalize when its last key closes), the token found by label, the AES-256
 * secret key found by label (and id), one logged-in session per key guarded by a mutex (a
 * session runs one operation at a time; the KBS seals from several worker threads). The data
 * key is wrapped with CKM_AES_GCM on the token; the key itself is never read.
 */
#include "store/store_p11.h"

#include <dlfcn.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_MODULES 8
#define MAX_SLOTS 64

bool cl_store_p11_is_uri(const char *s)
{
    return s && strncmp(s, "pkcs11:", 7) == 0;
}

/* ---- the URI (RFC 7512) ---- */

/* Percent-decodes v[0..n) into out[cap] (a string: no NUL byte inside). */
static int attr_str(const char *name, const char *v, size_t n, char *out, size_t cap,
                    struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_str) *d = cl_pct_decode(v, n, &len);
    if (!d)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (len == 0 || len >= cap || strlen(d) != len) {
        explicit_bzero(d, len);
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: '%s': empty, too long or holds a NUL byte",
                          name);
    }
    memcpy(out, d, len + 1);
    explicit_bzero(d, len);
    return 0;
}

static int path_attr(struct cl_store_p11_uri *u, const char *name, size_t nlen, const char *v,
                     size_t vlen, unsigned *seen, struct cl_err *err)
{
    static const char *const names[] = {"token", "object", "id", "type"};
    size_t i = 0;
    while (i < CL_ARRAY_LEN(names) && !(strlen(names[i]) == nlen && !memcmp(name, names[i], nlen)))
        i++;
    if (i == CL_ARRAY_LEN(names))
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: unknown attribute '%.*s'", (int)nlen, name);
    if (*seen & (1u << i))
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: '%s' given twice", names[i]);
    *seen |= 1u << i;
    switch (i) {
    case 0:
        return attr_str("token", v, vlen, u->token, sizeof u->token, err);
    case 1:
        return attr_str("object", v, vlen, u->object, sizeof u->object, err);
    case 2: {
        size_t len = 0;
        CL_AUTO(cl_str) *d = cl_pct_decode(v, vlen, &len);
        if (!d)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        if (len == 0 || len > sizeof u->id)
            return cl_err_set(err, CL_EPARSE, "pkcs11 URI: 'id': empty or longer than %d bytes",
                              CL_STORE_P11_MAX_ID);
        memcpy(u->id, d, len);
        u->idlen = len;
        return 0;
    }
    default: {
        char t[16];
        if (attr_str("type", v, vlen, t, sizeof t, err) < 0)
            return err ? err->code : CL_EPARSE;
        if (strcmp(t, "secret-key") != 0)
            return cl_err_set(err, CL_EPARSE, "pkcs11 URI: 'type=%s': the key is a secret-key", t);
        return 0;
    }
    }
}

static int query_attr(struct cl_store_p11_uri *u, const char *name, size_t nlen, const char *v,
                      size_t vlen, unsigned *seen, struct cl_err *err)
{
    static const char *const names[] = {"module-path", "pin-source", "pin-value"};
    size_t i = 0;
    while (i < CL_ARRAY_LEN(names) && !(strlen(names[i]) == nlen && !memcmp(name, names[i], nlen)))
        i++;
    if (i == CL_ARRAY_LEN(names))
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: unknown query attribute '%.*s'", (int)nlen,
                          name);
    if (*seen & (1u << i))
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: '%s' given twice", names[i]);
    *seen |= 1u << i;
    if (i == 0)
        return attr_str("module-path", v, vlen, u->module, sizeof u->module, err);
    if (i == 2) {
        u->has_pin_value = true;
        return attr_str("pin-value", v, vlen, u->pin_value, sizeof u->pin_value, err);
    }
    if (attr_str("pin-source", v, vlen, u->pin_source, sizeof u->pin_source, err) < 0)
        return err ? err->code : CL_EPARSE;
    /* file:/path or file:///path; a bare /path too */
    size_t skip = strncmp(u->pin_source, "file://", 7) == 0 ? 7
                  : strncmp(u->pin_source, "file:", 5) == 0 ? 5
                                                            : 0;
    memmove(u->pin_source, u->pin_source + skip, strlen(u->pin_source) - skip + 1);
    if (u->pin_source[0] != '/')
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: 'pin-source': want file:/absolute/path");
    return 0;
}

int cl_store_p11_uri_parse(const char *uri, struct cl_store_p11_uri *out, struct cl_err *err)
{
    if (!cl_store_p11_is_uri(uri))
        return cl_err_set(err, CL_EPARSE, "pkcs11 URI: does not start with 'pkcs11:'");
    size_t total = strnlen(uri, CL_STORE_P11_MAX_URI + 1);
    if (total > CL_STORE_P11_MAX_URI)
        return cl_err_set(err, CL_ELIMIT, "pkcs11 URI: longer than %d bytes", CL_STORE_P11_MAX_URI);
    struct cl_store_p11_uri *u = calloc(1, sizeof *u);
    if (!u)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    const char *p = uri + 7, *end = uri + total;
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pend = q ? q : end;
    unsigned pseen = 0, qseen = 0;
    int rc = 0;
    /* path: attr=value;attr=value  then  query: attr=value&attr=value */
    for (int part = 0; part < 2 && rc == 0; part++) {
        const char *s = part ? (q ? q + 1 : end) : p, *e = part ? end : pend;
        char sep = part ? '&' : ';';
        for (unsigned nattr = 0; s < e && rc == 0; nattr++) {
            const char *a = memchr(s, sep, (size_t)(e - s));
            const char *ae = a ? a : e;
            const char *eq = memchr(s, '=', (size_t)(ae - s));
            /* not quoted: a PIN typed without its '=' would end up in the log */
            if (!eq || eq == s)
                rc = cl_err_set(err, CL_EPARSE, "pkcs11 URI: %s attribute %u is not name=value",
                                part ? "query" : "path", nattr + 1);
            else if (part == 0)
                rc = path_attr(u, s, (size_t)(eq - s), eq + 1, (size_t)(ae - eq - 1), &pseen, err);
            else
                rc = query_attr(u, s, (size_t)(eq - s), eq + 1, (size_t)(ae - eq - 1), &qseen, err);
            s = a ? a + 1 : e;
        }
    }
    if (rc == 0 && (!u->token[0] || !u->object[0]))
        rc = cl_err_set(err, CL_EPARSE, "pkcs11 URI: 'token' and 'object' are required");
    if (rc == 0 && !u->module[0])
        rc = cl_err_set(err, CL_EPARSE, "pkcs11 URI: 'module-path' is required");
    if (rc == 0 && u->pin_source[0] && u->has_pin_value)
        rc = cl_err_set(err, CL_EPARSE, "pkcs11 URI: 'pin-source' and 'pin-value' both given");
    if (rc == 0)
        memcpy(out, u, sizeof *u);
    explicit_bzero(u, sizeof *u);
    free(u);
    return rc < 0 ? rc : 0;
}

/* The PKCS#11 API takes no const pointers even for what it only reads. */
static void *unconst(const void *p)
{
    return (void *)(uintptr_t)p;
}

/* ---- modules: dlopen'ed and initialized once, finalized with their last key ---- */

struct p11_module {
    char path[4096];
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    bool finalize; /* we initialized it (not another part of the process) */
};

static struct p11_module modules[MAX_MODULES];
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *ckr_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } t[] = {
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
        {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
        {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(t); i++)
        if (t[i].rv == rv)
            return t[i].name;
    static __thread char other[32];
    snprintf(other, sizeof other, "CKR 0x%lx", (unsigned long)rv);
    return other;
}

static struct p11_module *module_get(const char *path, struct cl_err *err)
{
    pthread_mutex_lock(&modules_lock);
    struct p11_module *m = NULL, *free_slot = NULL;
    for (size_t i = 0; i < MAX_MODULES && !m; i++) {
        if (modules[i].refs && strcmp(modules[i].path, path) == 0)
            m = &modules[i];
        else if (!modules[i].refs && !free_slot)
            free_slot = &modules[i];
    }
    if (m) {
        m->refs++;
        pthread_mutex_unlock(&modules_lock);
        return m;
    }
    if (!free_slot) {
        pthread_mutex_unlock(&modules_lock);
        cl_err_set(err, CL_ELIMIT, "module %s: more than %d modules", path, MAX_MODULES);
        return NULL;
    }
    m = free_slot;
    CK_C_GetFunctionList get = NULL;
    CK_RV rv = CKR_OK;
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl) {
        const char *why = dlerror();
        cl_err_set(err, CL_EIO, "module %s: dlopen failed (%s)", path, why ? why : "?");
        goto fail;
    }
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (!get || (rv = get(&m->f)) != CKR_OK || !m->f) {
        cl_err_set(err, CL_EUNSUPPORTED, "module %s: no C_GetFunctionList (%s)", path,
                   ckr_name(rv));
        goto fail;
    }
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    rv = m->f->C_Initialize(&args);
    m->finalize = rv == CKR_OK;
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        cl_err_set(err, CL_EIO, "module %s: C_Initialize: %s", path, ckr_name(rv));
        goto fail;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    m->refs = 1;
    pthread_mutex_unlock(&modules_lock);
    return m;
fail:
    if (m->dl)
        dlclose(m->dl);
    memset(m, 0, sizeof *m);
    pthread_mutex_unlock(&modules_lock);
    return NULL;
}

static void module_put(struct p11_module *m)
{
    pthread_mutex_lock(&modules_lock);
    if (--m->refs == 0) {
        if (m->finalize)
            m->f->C_Finalize(NULL);
        dlclose(m->dl);
        memset(m, 0, sizeof *m);
    }
    pthread_mutex_unlock(&modules_lock);
}

/* ---- a key on a token ---- */

struct cl_store_p11 {
    struct p11_module *m;
    CK_SESSION_HANDLE sess;
    bool open;
    CK_OBJECT_HANDLE key;
    pthread_mutex_t lock; /* the session: one operation at a time */
    char kid[9];
    char what[160]; /* "pkcs11:token=x;object=y" for messages (never the PIN) */
};

static void label_trim(const unsigned char *l, size_t n, char *out)
{
    while (n && l[n - 1] == ' ')
        n--;
    memcpy(out, l, n);
    out[n] = 0;
}

static int find_slot(struct cl_store_p11 *k, const struct cl_store_p11_uri *u, CK_SLOT_ID *slot,
                     CK_TOKEN_INFO *ti, struct cl_err *err)
{
    CK_FUNCTION_LIST_PTR f = k->m->f;
    CK_SLOT_ID slots[MAX_SLOTS];
    CK_ULONG n = MAX_SLOTS;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return cl_err_set(err, CL_EIO, "C_GetSlotList: %s", ckr_name(rv));
    for (CK_ULONG i = 0; i < n; i++) {
        char label[33];
        if (f->C_GetTokenInfo(slots[i], ti) != CKR_OK)
            continue;
        label_trim(ti->label, sizeof ti->label, label);
        if (strcmp(label, u->token) == 0) {
            *slot = slots[i];
            return 0;
        }
    }
    return cl_err_set(err, CL_ENOTFOUND, "token '%s' not found", u->token);
}

static int read_pin(const struct cl_store_p11_uri *u, char *pin, size_t cap, size_t *len,
                    struct cl_err *err)
{
    if (u->has_pin_value) {
        *len = strlen(u->pin_value);
        memcpy(pin, u->pin_value, *len);
        return 0;
    }
    size_t n = 0;
    cl_bytes *raw = cl_file_read(u->pin_source, cap, &n, err);
    if (!raw)
        return cl_err_prefix(err, "pin-source");
    while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        n--;
    memcpy(pin, raw, n);
    *len = n;
    explicit_bzero(raw, n);
    free(raw);
    return 0;
}

static int find_key(struct cl_store_p11 *k, const struct cl_store_p11_uri *u, struct cl_err *err)
{
    CK_FUNCTION_LIST_PTR f = k->m->f;
    CK_ATTRIBUTE tmpl[2] = {
        {CKA_LABEL, unconst(u->object), strlen(u->object)},
        {CKA_ID, unconst(u->id), u->idlen},
    };
    CK_RV rv = f->C_FindObjectsInit(k->sess, tmpl, u->idlen ? 2 : 1);
    if (rv != CKR_OK)
        return cl_err_set(err, CL_EIO, "C_FindObjectsInit: %s", ckr_name(rv));
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    rv = f->C_FindObjects(k->sess, h, 2, &n);
    f->C_FindObjectsFinal(k->sess);
    if (rv != CKR_OK)
        return cl_err_set(err, CL_EIO, "C_FindObjects: %s", ckr_name(rv));
    if (n == 0)
        return cl_err_set(err, CL_ENOTFOUND, "object '%s' not found", u->object);
    if (n > 1)
        return cl_err_set(err, CL_EINVAL, "object '%s': more than one (add id=)", u->object);
    k->key = h[0];
    CK_OBJECT_CLASS cls = 0;
    CK_KEY_TYPE type = 0;
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE a[3] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE_LEN, &vlen, sizeof vlen},
    };
    if (f->C_GetAttributeValue(k->sess, k->key, a, 3) != CKR_OK || cls != CKO_SECRET_KEY ||
        type != CKK_AES || vlen != 32)
        return cl_err_set(err, CL_EINVAL, "object '%s': key is not AES-256", u->object);
    /* the key id: from the check value, else from the token serial and the object id */
    uint8_t buf[64 + 16 + CL_STORE_P11_MAX_ID];
    size_t blen = 7;
    memcpy(buf, "pkcs11:", 7);
    CK_ATTRIBUTE cv = {CKA_CHECK_VALUE, buf + 7, 64};
    if (f->C_GetAttributeValue(k->sess, k->key, &cv, 1) == CKR_OK && cv.ulValueLen > 0 &&
        cv.ulValueLen <= 64) {
        blen += cv.ulValueLen;
    } else {
        CK_TOKEN_INFO ti;
        CK_SESSION_INFO si;
        CK_ATTRIBUTE id = {CKA_ID, buf + 7 + 16, CL_STORE_P11_MAX_ID};
        if (f->C_GetSessionInfo(k->sess, &si) != CKR_OK ||
            f->C_GetTokenInfo(si.slotID, &ti) != CKR_OK ||
            f->C_GetAttributeValue(k->sess, k->key, &id, 1) != CKR_OK ||
            id.ulValueLen > CL_STORE_P11_MAX_ID)
            return cl_err_set(err, CL_EUNSUPPORTED,
                              "object '%s': no CKA_CHECK_VALUE and no CKA_ID to name the key",
                              u->object);
        memcpy(buf + 7, ti.serialNumber, 16);
        blen += 16 + id.ulValueLen;
    }
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(buf, blen, d);
    snprintf(k->kid, sizeof k->kid, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
    return 0;
}

static int open_key(struct cl_store_p11 *k, const struct cl_store_p11_uri *u, struct cl_err *err)
{
    k->m = module_get(u->module, err);
    if (!k->m)
        return err ? err->code : CL_EIO;
    CK_FUNCTION_LIST_PTR f = k->m->f;
    CK_SLOT_ID slot = 0;
    CK_TOKEN_INFO ti;
    if (find_slot(k, u, &slot, &ti, err) < 0)
        return err ? err->code : CL_ENOTFOUND;
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &k->sess);
    if (rv != CKR_OK)
        return cl_err_set(err, CL_EIO, "C_OpenSession: %s", ckr_name(rv));
    k->open = true;
    if (ti.flags & CKF_LOGIN_REQUIRED) {
        if (!u->has_pin_value && !u->pin_source[0])
            return cl_err_set(err, CL_EINVAL,
                              "token '%s' needs a login: add pin-source=file:/path to the URI",
                              u->token);
        char pin[CL_STORE_P11_MAX_PIN + 1];
        size_t plen = 0;
        int rc = read_pin(u, pin, sizeof pin - 1, &plen, err);
        if (rc == 0) {
            rv = f->C_Login(k->sess, CKU_USER, (unsigned char *)pin, plen);
            /* another key of this process on the same token logged in already: the login is
             * the application's, not the session's */
            if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
                rc = cl_err_set(err, CL_EDENIED, "C_Login: %s", ckr_name(rv));
        }
        explicit_bzero(pin, sizeof pin);
        if (rc < 0)
            return rc;
    }
    return find_key(k, u, err);
}

struct cl_store_p11 *cl_store_p11_open(const char *uri, struct cl_err *err)
{
    struct cl_store_p11_uri *u = calloc(1, sizeof *u);
    struct cl_store_p11 *k = calloc(1, sizeof *k);
    int rc = 0;
    if (!u || !k)
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else if ((rc = cl_store_p11_uri_parse(uri, u, err)) < 0)
        cl_err_prefix(err, "store encryption key");
    if (rc == 0) {
        snprintf(k->what, sizeof k->what, "pkcs11:token=%.40s;object=%.40s", u->token, u->object);
        pthread_mutex_init(&k->lock, NULL);
        rc = open_key(k, u, err);
        if (rc < 0)
            cl_err_prefix(err, "store encryption key %s", k->what);
    }
    if (u)
        explicit_bzero(u, sizeof *u);
    free(u);
    if (rc < 0 && k) {
        if (k->what[0])
            cl_store_p11_close(k);
        else
            free(k);
        return NULL;
    }
    return k;
}

void cl_store_p11_close(struct cl_store_p11 *k)
{
    if (!k)
        return;
    if (k->open)
        k->m->f->C_CloseSession(k->sess);
    if (k->m)
        module_put(k->m);
    pthread_mutex_destroy(&k->lock);
    explicit_bzero(k, sizeof *k);
    free(k);
}

const char *cl_store_p11_kid(const struct cl_store_p11 *k)
{
    return k->kid;
}

static CK_RV gcm_on_token(struct cl_store_p11 *k, bool enc, const uint8_t iv[12], const void *aad,
                          size_t aadlen, const uint8_t *in, CK_ULONG inlen, uint8_t *out,
                          CK_ULONG *outlen, bool *init_failed)
{
    CK_GCM_PARAMS gp = {
        .pIv = unconst(iv),
        .ulIvLen = 12,
        .ulIvBits = 96,
        .pAAD = unconst(aad),
        .ulAADLen = aadlen,
        .ulTagBits = 128,
    };
    CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof gp};
    CK_FUNCTION_LIST_PTR f = k->m->f;
    pthread_mutex_lock(&k->lock);
    CK_RV rv =
        enc ? f->C_EncryptInit(k->sess, &mech, k->key) : f->C_DecryptInit(k->sess, &mech, k->key);
    *init_failed = rv != CKR_OK;
    if (rv == CKR_OK)
        rv = enc ? f->C_Encrypt(k->sess, unconst(in), inlen, out, outlen)
                 : f->C_Decrypt(k->sess, unconst(in), inlen, out, outlen);
    pthread_mutex_unlock(&k->lock);
    return rv;
}

int cl_store_p11_wrap(struct cl_store_p11 *k, const uint8_t iv[12], const void *aad, size_t aadlen,
                      const uint8_t dek[32], uint8_t ct[32], uint8_t tag[16], struct cl_err *err)
{
    uint8_t out[48];
    CK_ULONG n = sizeof out;
    bool init_failed = false;
    CK_RV rv = gcm_on_token(k, true, iv, aad, aadlen, dek, 32, out, &n, &init_failed);
    if (rv != CKR_OK || n != 48) {
        explicit_bzero(out, sizeof out);
        return cl_err_set(err, CL_EIO, "store encryption key %s: C_Encrypt%s: %s", k->what,
                          init_failed ? "Init" : "",
                          rv != CKR_OK ? ckr_name(rv) : "unexpected length");
    }
    memcpy(ct, out, 32);
    memcpy(tag, out + 32, 16);
    return 0;
}

int cl_store_p11_unwrap(struct cl_store_p11 *k, const uint8_t iv[12], const void *aad,
                        size_t aadlen, const uint8_t ct[32], const uint8_t tag[16], uint8_t dek[32],
                        struct cl_err *err)
{
    uint8_t in[48], out[48];
    memcpy(in, ct, 32);
    memcpy(in + 32, tag, 16);
    CK_ULONG n = sizeof out;
    bool init_failed = false;
    CK_RV rv = gcm_on_token(k, false, iv, aad, aadlen, in, sizeof in, out, &n, &init_failed);
    int rc = 0;
    /* a tag that does not check is CKR_ENCRYPTED_DATA_INVALID by the standard, but SoftHSM2
     * says CKR_GENERAL_ERROR: once C_DecryptInit took the key, any failure refuses the value */
    if (init_failed)
        rc = cl_err_set(err, CL_EIO, "store encryption key %s: C_DecryptInit: %s", k->what,
                        ckr_name(rv));
    else if (rv != CKR_OK || n != 32)
        rc = cl_err_set(err, CL_EVERIFY, "store encryption key %s: data key does not open (%s)",
                        k->what, rv != CKR_OK ? ckr_name(rv) : "unexpected length");
    else
        memcpy(dek, out, 32);
    explicit_bzero(out, sizeof out);
    return rc;
}
