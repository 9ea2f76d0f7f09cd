/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SecureMount for block devices with LUKS2, through libcryptsetup, with upstream's
 * parameters: aes-xts-plain64, 4096-byte sectors, optional hmac-sha256 integrity; a
 * detached header in tmpfs for sourceType "empty" (an ephemeral volume), the on-disk header
 * for "encrypted". The key comes from a sealed secret, a kbs:// resource or a file://, or is
 * 4096 random bytes. Opening needs device-mapper; where /dev/mapper/control is absent the
 * call stops after the format and header checks with a clear EUNSUPPORTED. libcryptsetup
 * itself is opened on the first call (cryptsetup_dl.c), so a hub that never mounts does not
 * carry it.
 */
#include "cdh/cdh_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LUKS_HEADER_SIZE (16u << 20)
#define EPHEMERAL_KEY_LEN 4096
#define MAX_KEY_FILE 65536

extern char **environ;

/* libcryptsetup's messages go to our log (debug), not to stderr. */
static void on_crypt_log(int level, const char *msg, void *usrptr)
{
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    if (level == CRYPT_LOG_ERROR)
        cl_info("libcryptsetup: %.*s", (int)n, msg);
    else
        cl_debug("libcryptsetup: %.*s", (int)n, msg);
}

static void crypt_log_once(void)
{
    crypt_set_log_callback(NULL, on_crypt_log, NULL);
}

/* Opens libcryptsetup (a clear EUNSUPPORTED when it is not installed) and routes its log. */
static int crypt_setup(struct cl_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (cl_cdh_cryptsetup_load(err) < 0)
        return err ? err->code : CL_EUNSUPPORTED;
    pthread_once(&once, crypt_log_once);
    return 0;
}

int cl_cdh_luks_format(const char *device, const char *header_path, const struct cl_secret *key,
                       bool integrity, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (crypt_setup(err) < 0)
        return err->code;
    struct crypt_device *cd = NULL;
    int r =
        header_path ? crypt_init_data_device(&cd, header_path, device) : crypt_init(&cd, device);
    if (r < 0)
        return cl_err_set(err, CL_EIO, "luks2: cannot open %s: %s", device, strerror(-r));
    /* Tests format many volumes; argon2id at cryptsetup's defaults costs seconds and up to
     * 1 GiB each time. The switch is for tests only and says so every time. */
    const char *fast = getenv("CLOISTER_LUKS_FAST_PBKDF_INSECURE");
    if (fast && strcmp(fast, "1") == 0) {
        cl_insecure("CLOISTER_LUKS_FAST_PBKDF_INSECURE",
                    "keyslot of %s derived with PBKDF2-SHA256 at 1000 "
                    "iterations: a weak passphrase on this volume is easy to guess",
                    device);
        struct crypt_pbkdf_type pb = {.type = CRYPT_KDF_PBKDF2,
                                      .hash = "sha256",
                                      .iterations = 1000,
                                      .flags = CRYPT_PBKDF_NO_BENCHMARK};
        if (crypt_set_pbkdf_type(cd, &pb) < 0) {
            crypt_free(cd);
            return cl_err_set(err, CL_EIO, "luks2: cannot set the PBKDF of %s", device);
        }
    }
    struct crypt_params_luks2 p = {.sector_size = 4096,
                                   .integrity = integrity ? "hmac(sha256)" : NULL};
    /* xts takes two AES-256 keys; integrity adds the HMAC key */
    size_t vk = 64 + (integrity ? 32 : 0);
    r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, vk, &p);
    if (r >= 0)
        r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)key->data,
                                            key->len);
    crypt_free(cd);
    if (r < 0)
        return cl_err_set(err, CL_EIO, "luks2: formatting %s failed: %s", device, strerror(-r));
    return 0;
}

int cl_cdh_luks_check(const char *device, const char *header_path, const struct cl_secret *key,
                      struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (crypt_setup(err) < 0)
        return err->code;
    struct crypt_device *cd = NULL;
    int r =
        header_path ? crypt_init_data_device(&cd, header_path, device) : crypt_init(&cd, device);
    if (r < 0)
        return cl_err_set(err, CL_EIO, "luks2: cannot open %s: %s", device, strerror(-r));
    r = crypt_load(cd, CRYPT_LUKS2, NULL);
    if (r < 0) {
        crypt_free(cd);
        return cl_err_set(err, CL_EPARSE, "luks2: %s holds no LUKS2 header",
                          header_path ? header_path : device);
    }
    const char *cipher = crypt_get_cipher(cd), *mode = crypt_get_cipher_mode(cd);
    int ssz = crypt_get_sector_size(cd);
    bool params_ok = cipher && mode && strcmp(cipher, "aes") == 0 &&
                     strcmp(mode, "xts-plain64") == 0 && ssz == 4096;
    /* A NULL name checks the key against the keyslots without device-mapper. */
    r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *)key->data, key->len,
                                     0);
    crypt_free(cd);
    if (!params_ok)
        return cl_err_set(err, CL_EVERIFY,
                          "luks2: header parameters %s-%s/%d are not aes-xts-plain64/4096",
                          cipher ? cipher : "?", mode ? mode : "?", ssz);
    if (r < 0)
        return cl_err_set(err, CL_EVERIFY, "luks2: the key opens no keyslot of %s",
                          header_path ? header_path : device);
    return 0;
}

bool cl_cdh_dm_available(void)
{
    /* the kernel's device-mapper registers a misc device; /dev/mapper/control alone proves
     * nothing (libdevmapper creates the node when it is missing, whatever the kernel has) */
    return access("/sys/class/misc/device-mapper", F_OK) == 0 &&
           access("/dev/mapper/control", R_OK | W_OK) == 0;
}

static const char *opt(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* deviceId "MAJ:MIN" → /dev/<DEVNAME> from sysfs uevent; else devicePath. */
static int resolve_device(const json_t *o, char *out, size_t cap, struct cl_err *err)
{
    const char *id = opt(o, "deviceId"), *path = opt(o, "devicePath");
    if (id) {
        unsigned maj = 0, min = 0;
        char tail = 0;
        if (sscanf(id, "%u:%u%c", &maj, &min, &tail) != 2)
            return cl_err_set(err, CL_EINVAL, "secure mount: deviceId '%.32s' is not MAJ:MIN", id);
        char ue[96];
        snprintf(ue, sizeof ue, "/sys/dev/block/%u:%u/uevent", maj, min);
        size_t n = 0;
        CL_AUTO(cl_bytes) *text = cl_file_read(ue, 8192, &n, err);
        const char *dn = text ? strstr((const char *)text, "DEVNAME=") : NULL;
        if (!dn)
            return cl_err_set(err, CL_ENOTFOUND, "secure mount: no DEVNAME for device %u:%u", maj,
                              min);
        dn += 8;
        size_t l = strcspn(dn, "\n");
        if (l == 0 || l > 64 || memchr(dn, '/', l) || (l >= 2 && dn[0] == '.' && dn[1] == '.'))
            return cl_err_set(err, CL_EPARSE, "secure mount: odd DEVNAME for device %u:%u", maj,
                              min);
        snprintf(out, cap, "/dev/%.*s", (int)l, dn);
        return 0;
    }
    if (!path || path[0] != '/' || strlen(path) >= cap)
        return cl_err_set(err, CL_EINVAL,
                          "secure mount: deviceId or an absolute devicePath is required");
    snprintf(out, cap, "%s", path);
    return 0;
}

static int volume_key(struct cl_cdh *cdh, const char *spec, struct cl_secret **out,
                      struct cl_err *err)
{
    if (!spec) {
        *out = cl_secret_new(EPHEMERAL_KEY_LEN);
        if (!*out)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        return cl_random((*out)->data, EPHEMERAL_KEY_LEN, err);
    }
    if (strncmp(spec, "sealed.", 7) == 0)
        return cl_cdh_unseal(cdh, spec, strlen(spec), out, err);
    if (cl_cdh_is_uri(spec))
        return cl_cdh_get_resource(cdh, spec, out, err);
    if (strncmp(spec, "file://", 7) == 0) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *b = cl_file_read(spec + 7, MAX_KEY_FILE, &n, err);
        if (!b)
            return cl_err_prefix(err, "secure mount key");
        *out = cl_secret_from(b, n);
        explicit_bzero(b, n);
        return *out ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    return cl_err_set(err, CL_EINVAL,
                      "secure mount: key must be sealed.*, kbs://... or file://...");
}

static int run(const char *const argv[], struct cl_err *err)
{
    pid_t pid;
    int r = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)(uintptr_t)argv, environ);
    if (r != 0)
        return cl_err_set(err, CL_EIO, "cannot run %s: %s", argv[0], strerror(r));
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return cl_err_set(err, CL_EIO, "%s failed (status %d)", argv[0], st);
    return 0;
}

static int open_and_mount(const char *dev, const char *hdr, const struct cl_secret *key,
                          const char *name, const char *target, const char *mp, bool fresh,
                          struct cl_err *err)
{
    struct crypt_device *cd = NULL;
    int r = hdr ? crypt_init_data_device(&cd, hdr, dev) : crypt_init(&cd, dev);
    if (r >= 0)
        r = crypt_load(cd, CRYPT_LUKS2, NULL);
    if (r >= 0)
        r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT, (const char *)key->data,
                                         key->len, 0);
    crypt_free(cd);
    if (r < 0)
        return cl_err_set(err, CL_EIO, "luks2: cannot open %s as %s: %s", dev, name, strerror(-r));
    char mapped[300];
    snprintf(mapped, sizeof mapped, "/dev/mapper/%s", name);
    if (strcmp(target, "device") == 0) {
        unlink(mp);
        if (symlink(mapped, mp) < 0)
            return cl_err_set(err, CL_EIO, "secure mount: symlink %s: %s", mp, strerror(errno));
        return 0;
    }
    if (fresh) {
        const char *mkfs[] = {"/sbin/mkfs.ext4", "-F", "-q", mapped, NULL};
        if (run(mkfs, err) < 0)
            return err->code;
    }
    if (cl_mkdir_p(mp, 0755, err) < 0)
        return err->code;
    if (mount(mapped, mp, "ext4", MS_NOATIME, NULL) < 0)
        return cl_err_set(err, CL_EIO, "secure mount: mount %s on %s: %s", mapped, mp,
                          strerror(errno));
    return 0;
}

int cl_cdh_secure_mount(struct cl_cdh *cdh, const struct cl_cdh_mount_req *req, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    const struct cl_cdh_config *cfg = cl_cdh_config_of(cdh);
    if (!req->volume_type || strcmp(req->volume_type, "block-device") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "secure mount: volume_type '%.32s' is not supported (block-device)",
                          req->volume_type ? req->volume_type : "");
    const json_t *o = req->options;
    const char *src = opt(o, "sourceType"), *enc = opt(o, "encryptionType");
    const char *target = opt(o, "targetType") ? opt(o, "targetType") : "device";
    const char *fst = opt(o, "filesystemType");
    if (!src || (strcmp(src, "empty") != 0 && strcmp(src, "encrypted") != 0))
        return cl_err_set(err, CL_EINVAL, "secure mount: sourceType must be empty or encrypted");
    if (!enc || strcmp(enc, "luks2") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "secure mount: encryptionType '%.16s' is not supported (luks2)",
                          enc ? enc : "");
    if (strcmp(target, "device") != 0 && strcmp(target, "fileSystem") != 0)
        return cl_err_set(err, CL_EINVAL, "secure mount: targetType must be device or fileSystem");
    if (fst && strcmp(fst, "ext4") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "secure mount: filesystemType '%.16s' (only ext4)",
                          fst);
    if (!req->mount_point || req->mount_point[0] != '/')
        return cl_err_set(err, CL_EINVAL, "secure mount: mount_point must be an absolute path");
    /* every parameter is checked before anything is written to the device */
    const char *mn = opt(o, "mapperName");
    if (mn && (strlen(mn) >= 64 || !*mn || strchr(mn, '/') || strcmp(mn, ".") == 0 ||
               strcmp(mn, "..") == 0))
        return cl_err_set(err, CL_EINVAL, "secure mount: mapperName '%.64s' is not a plain name",
                          mn);
    const char *integ = opt(o, "dataIntegrity");
    if (integ && strcmp(integ, "true") != 0 && strcmp(integ, "false") != 0)
        return cl_err_set(err, CL_EINVAL,
                          "secure mount: dataIntegrity '%.16s' is not true or false", integ);
    bool integrity = integ && strcmp(integ, "true") == 0;
    char dev[256];
    if (resolve_device(o, dev, sizeof dev, err) < 0)
        return err->code;
    /* the library is there before a key is fetched or a header written */
    if (crypt_setup(err) < 0)
        return err->code;
    CL_AUTO(cl_secret) *key = NULL;
    if (volume_key(cdh, opt(o, "key"), &key, err) < 0)
        return cl_err_prefix(err, "secure mount key");
    bool fresh = strcmp(src, "empty") == 0;
    CL_AUTO(cl_str) *hdr = NULL;
    if (fresh) {
        const char *hdir = cfg->luks_header_dir ? cfg->luks_header_dir : CL_CDH_LUKS_HEADER_DIR;
        CL_AUTO(cl_str) *b = cl_b64_encode(dev, strlen(dev), CL_B64_URL);
        hdr = b ? cl_strdupf("%s/%s.header", hdir, b) : NULL;
        if (!hdr)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        if (cl_mkdir_p(hdir, 0700, err) < 0)
            return err->code;
        int fd = open(hdr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return cl_err_set(err, CL_EEXISTS, "secure mount: header %s: %s", hdr, strerror(errno));
        int tr = ftruncate(fd, LUKS_HEADER_SIZE);
        close(fd);
        if (tr < 0)
            return cl_err_set(err, CL_EIO, "secure mount: sizing %s: %s", hdr, strerror(errno));
        if (cl_cdh_luks_format(dev, hdr, key, integrity, err) < 0)
            return err->code;
    }
    if (cl_cdh_luks_check(dev, hdr, key, err) < 0)
        return err->code;
    if (!cl_cdh_dm_available())
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "secure mount: %s is %s but device-mapper (/dev/mapper/control) is not "
                          "available to open it",
                          dev, fresh ? "formatted" : "a LUKS2 volume");
    char name[64];
    if (mn) {
        snprintf(name, sizeof name, "%s", mn);
    } else {
        uint8_t r[16];
        if (cl_random(r, sizeof r, err) < 0)
            return err->code;
        CL_AUTO(cl_str) *h = cl_hex_encode(r, sizeof r);
        snprintf(name, sizeof name, "cdh-%s", h ? h : "volume");
    }
    return open_and_mount(dev, hdr, key, name, target, req->mount_point, fresh, err);
}
