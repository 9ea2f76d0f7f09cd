/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: layer tar streams. Each input is read by the tar reader alone (entries must
 * be NUL-terminated within the caps, data must never exceed the declared size) and then
 * unpacked for real into a fresh root that sits next to an "outside" folder holding one
 * sentinel file: whatever the archive says, the sentinel stays as it is and nothing else
 * appears outside the root. The first byte picks the whiteout mode and whether the rest is
 * gzip-compressed (decompression capped at 16 MiB).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

static char base[256];
static int basefd = -1;

/* The scratch folder goes when the process ends (replay driver or fuzzer). */
static void teardown(void)
{
    char *slash = strrchr(base, '/');
    if (!slash)
        return;
    *slash = 0;
    int pfd = open(*base ? base : "/", O_PATH | O_DIRECTORY);
    if (pfd >= 0) {
        struct cl_err e = {0};
        if (cl_image_rmtree(pfd, slash + 1, &e) < 0)
            fprintf(stderr, "fuzz_tar: cleanup: %s\n", e.msg);
        close(pfd);
    }
}

static void setup(void)
{
    if (basefd >= 0)
        return;
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/cl-fuzz-tar-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(base))
        abort();
    basefd = open(base, O_RDONLY | O_DIRECTORY);
    if (basefd < 0 || mkdirat(basefd, "outside", 0755) < 0)
        abort();
    int fd = openat(basefd, "outside/sentinel", O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || write(fd, "keep", 4) != 4)
        abort();
    close(fd);
    cl_log_set_level(CL_LOG_ERROR);
    atexit(teardown);
}

static void check_outside(void)
{
    struct stat st;
    char buf[8] = "";
    int fd = openat(basefd, "outside/sentinel", O_RDONLY | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_nlink != 1 || st.st_size != 4 ||
        read(fd, buf, 8) != 4 || memcmp(buf, "keep", 4) != 0) {
        fprintf(stderr, "the sentinel outside the root changed\n");
        abort();
    }
    close(fd);
    size_t n = 0;
    DIR *d = opendir(base);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d)
        closedir(d);
    int od = openat(basefd, "outside", O_RDONLY | O_DIRECTORY);
    DIR *o = od >= 0 ? fdopendir(od) : NULL;
    size_t on = 0;
    while (o && (de = readdir(o)) != NULL)
        on += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (o)
        closedir(o);
    if (n != 2 || on != 1) {
        fprintf(stderr, "something appeared outside the root\n");
        abort();
    }
}

static void read_only(const uint8_t *data, size_t size)
{
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, data, size);
    struct cl_image_tar *t = cl_image_tar_new(&m.src, NULL);
    struct cl_image_tar_entry *e = NULL;
    uint8_t buf[4096];
    for (int i = 0; t && i < 10000 && cl_image_tar_next(t, &e, NULL) == 1; i++) {
        if (strnlen(e->path, sizeof e->path) >= sizeof e->path ||
            strnlen(e->link, sizeof e->link) >= sizeof e->link ||
            e->nxattrs > CL_IMAGE_MAX_XATTRS) {
            fprintf(stderr, "entry out of its bounds\n");
            abort();
        }
        uint64_t total = 0;
        size_t got = 0;
        while (cl_image_tar_read(t, buf, sizeof buf, &got, NULL) == 0 && got)
            total += got;
        if (total > e->size) {
            fprintf(stderr, "more data than declared\n");
            abort();
        }
    }
    cl_image_tar_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup();
    uint8_t mode = data[0];
    data++;
    size--;
    read_only(data, size);
    if (mkdirat(basefd, "root", 0755) < 0)
        abort();
    int root = openat(basefd, "root", O_RDONLY | O_DIRECTORY);
    struct cl_image_mem_src m;
    cl_image_mem_src_init(&m, data, size);
    struct cl_image_src *src = &m.src, *dz = NULL;
    if (mode & 2) {
        dz = cl_image_decompress_new(&m.src, CL_IMAGE_COMP_GZIP, 16u << 20, NULL);
        src = dz;
    }
    struct cl_image_unpack_opts o = {
        .whiteouts = (mode & 1) ? CL_IMAGE_WH_APPLY : CL_IMAGE_WH_OVERLAY,
        .max_entries = 2000,
        .allow_devices = false,
    };
    struct cl_err e = {0};
    if (src && cl_image_unpack(root, src, &o, NULL, &e) < 0 && !e.msg[0]) {
        fprintf(stderr, "refusal without a message\n");
        abort();
    }
    cl_image_decompress_free(dz);
    close(root);
    check_outside();
    if (cl_image_rmtree(basefd, "root", &e) < 0) {
        fprintf(stderr, "rmtree: %s\n", e.msg);
        abort();
    }
    return 0;
}
