/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: tar streams read by two readers. Each input goes to Cloister's tar reader and
 * to libarchive's tar reader (linked here only, as a witness), and the two must agree on every
 * entry: name, type, declared size, link target, and the data bytes themselves (a hash). The
 * only way out of the comparison is a refusal by Cloister: a layer that two readers list
 * differently is a layer that hides something from one of them (a scanner, `tar -t`, umoci),
 * so Cloister must refuse what it cannot read the way the others do. Names are compared
 * without trailing slashes (directory spelling). With CL_TAR_DIFF_VERBOSE set, both listings
 * are printed to stderr.
 */
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image_int.h"

#define MAX_ENTRIES 256

struct ent {
    int type; /* a CL_TAR_* value, or 'u' for a type Cloister does not know */
    char path[CL_IMAGE_MAX_PATH + 2];
    char link[CL_IMAGE_MAX_PATH + 2];
    uint64_t size;  /* declared (regular files), 0 otherwise */
    uint64_t nread; /* data bytes the reader handed out */
    uint64_t hash;  /* FNV-1a of those bytes */
};

struct listing {
    struct ent e[MAX_ENTRIES];
    size_t n;
    bool refused;
};

static struct listing ours, theirs;
static bool verbose;

static void hash_feed(struct ent *e, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        e->hash = (e->hash ^ b[i]) * 0x100000001b3ull;
    e->nread += n;
}

static void set_name(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
    size_t n = strlen(dst);
    while (n > 1 && dst[n - 1] == '/')
        dst[--n] = 0;
}

static void read_ours(const uint8_t *data, size_t size)
{
    memset(&ours, 0, sizeof ours);
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, data, size);
    struct cl_image_tar *t = cl_image_tar_new(&m.src, NULL);
    if (!t)
        abort();
    struct cl_image_tar_entry *te = NULL;
    uint8_t buf[4096];
    int rc = 0;
    while (ours.n < MAX_ENTRIES && (rc = cl_image_tar_next(t, &te, NULL)) == 1) {
        struct ent *e = &ours.e[ours.n++];
        e->type = (int)te->type;
        e->hash = 0xcbf29ce484222325ull;
        set_name(e->path, sizeof e->path, te->path);
        if (te->type == CL_TAR_LINK || te->type == CL_TAR_SYMLINK)
            snprintf(e->link, sizeof e->link, "%s", te->link);
        e->size = te->type == CL_TAR_REG ? te->size : 0;
        size_t got = 0;
        while ((rc = cl_image_tar_read(t, buf, sizeof buf, &got, NULL)) == 0 && got)
            hash_feed(e, buf, got);
        if (rc < 0) {
            ours.refused = true;
            break;
        }
    }
    if (rc < 0)
        ours.refused = true;
    cl_image_tar_free(t);
}

static int their_type(struct archive_entry *ae)
{
    if (archive_entry_hardlink(ae))
        return CL_TAR_LINK;
    switch (archive_entry_filetype(ae)) {
    case AE_IFREG:
        return CL_TAR_REG;
    case AE_IFDIR:
        return CL_TAR_DIR;
    case AE_IFLNK:
        return CL_TAR_SYMLINK;
    case AE_IFCHR:
        return CL_TAR_CHR;
    case AE_IFBLK:
        return CL_TAR_BLK;
    case AE_IFIFO:
        return CL_TAR_FIFO;
    default:
        return 'u';
    }
}

static void read_theirs(const uint8_t *data, size_t size)
{
    memset(&theirs, 0, sizeof theirs);
    struct archive *a = archive_read_new();
    if (!a || archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
        theirs.refused = true;
        archive_read_free(a);
        return;
    }
    struct archive_entry *ae;
    uint8_t buf[4096];
    while (theirs.n < MAX_ENTRIES) {
        int rc = archive_read_next_header(a, &ae);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            if (verbose)
                fprintf(stderr, "libarchive: %s\n", archive_error_string(a));
            theirs.refused = true;
            break;
        }
        struct ent *e = &theirs.e[theirs.n++];
        e->type = their_type(ae);
        e->hash = 0xcbf29ce484222325ull;
        set_name(e->path, sizeof e->path, archive_entry_pathname(ae));
        if (e->type == CL_TAR_LINK)
            snprintf(e->link, sizeof e->link, "%s", archive_entry_hardlink(ae));
        else if (e->type == CL_TAR_SYMLINK)
            snprintf(e->link, sizeof e->link, "%s",
                     archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "");
        e->size = e->type == CL_TAR_REG ? (uint64_t)archive_entry_size(ae) : 0;
        la_ssize_t got;
        while ((got = archive_read_data(a, buf, sizeof buf)) > 0)
            hash_feed(e, buf, (size_t)got);
        if (got < 0) {
            if (verbose)
                fprintf(stderr, "libarchive: %s\n", archive_error_string(a));
            theirs.refused = true;
            break;
        }
    }
    archive_read_free(a);
}

static void dump(const char *who, const struct listing *l)
{
    fprintf(stderr, "%s: %zu entries%s\n", who, l->n, l->refused ? ", then refused" : "");
    for (size_t i = 0; i < l->n; i++) {
        const struct ent *e = &l->e[i];
        fprintf(stderr, "  %c %.200s%s%.200s size %llu read %llu hash %016llx\n", e->type, e->path,
                e->link[0] ? " -> " : "", e->link, (unsigned long long)e->size,
                (unsigned long long)e->nread, (unsigned long long)e->hash);
    }
}

static bool same(const struct ent *x, const struct ent *y)
{
    return x->type == y->type && strcmp(x->path, y->path) == 0 && strcmp(x->link, y->link) == 0 &&
           x->size == y->size && x->nread == y->nread && x->hash == y->hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        init = true;
        /* libarchive converts pax UTF-8 names to the locale's charset */
        if (!setlocale(LC_CTYPE, "C.UTF-8"))
            setlocale(LC_CTYPE, "C.utf8");
        verbose = getenv("CL_TAR_DIFF_VERBOSE") != NULL;
        cl_log_set_level(CL_LOG_ERROR);
    }
    read_ours(data, size);
    read_theirs(data, size);
    if (verbose) {
        dump("cloister", &ours);
        dump("libarchive", &theirs);
    }
    if (ours.refused)
        return 0; /* refusing is always allowed */
    if (ours.n == 0 && theirs.n == 0)
        return 0; /* nothing listed by either (libarchive refuses an empty stream) */
    /* Cloister accepted the whole stream (or its first MAX_ENTRIES entries): libarchive must
     * list the same entries, and must not have refused within them. */
    bool ok =
        theirs.n >= ours.n && (ours.n == MAX_ENTRIES || (theirs.n == ours.n && !theirs.refused));
    for (size_t i = 0; ok && i < ours.n; i++)
        ok = same(&ours.e[i], &theirs.e[i]);
    if (!ok) {
        fprintf(stderr, "tar readers disagree and Cloister did not refuse\n");
        if (!verbose) {
            dump("cloister", &ours);
            dump("libarchive", &theirs);
        }
        abort();
    }
    return 0;
}
