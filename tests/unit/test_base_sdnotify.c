/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/base/sdnotify.c against a real datagram socket the test owns (abstract
 * and path names), with one case per refusal: no NOTIFY_SOCKET, a relative or over-long
 * name, an over-long state, a socket nobody listens on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/sdnotify.h"

/* Binds a datagram socket at `name` ("@x" abstract or a path) and returns it. */
static int listen_at(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    assert_true(n < sizeof sa.sun_path);
    memcpy(sa.sun_path, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    else
        len++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[CL_SD_MAX_STATE + 16];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    assert_true(n >= 0);
    assert_int_equal((size_t)n, strlen(want));
    assert_memory_equal(buf, want, (size_t)n);
}

static void test_abstract_and_path(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@cl-sdnotify-test-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    struct cl_err err = {0};
    assert_int_equal(cl_sd_notify("READY=1\nSTATUS=serving", &err), 1);
    expect_datagram(fd, "READY=1\nSTATUS=serving");
    cl_sd_notify_reloading();
    char buf[128];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "RELOADING=1\nMONOTONIC_USEC="));
    close(fd);

    char path[] = "/tmp/cl-sdnotify-XXXXXX";
    assert_non_null(mkdtemp(path));
    char sock[96];
    snprintf(sock, sizeof sock, "%s/notify", path);
    fd = listen_at(sock);
    setenv("NOTIFY_SOCKET", sock, 1);
    assert_int_equal(cl_sd_notify("STOPPING=1", &err), 1);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
    unlink(sock);
    rmdir(path);
    unsetenv("NOTIFY_SOCKET");
}

/* Twins: nothing is sent, and each refusal names NOTIFY_SOCKET or the state. */
static void test_refusals(void **state)
{
    (void)state;
    struct cl_err err = {0};
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(cl_sd_notify("READY=1", &err), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(cl_sd_notify("READY=1", &err), 0);

    static const char *const bad_names[] = {"relative/sock", "@", "/", "vsock:2:999"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        setenv("NOTIFY_SOCKET", bad_names[i], 1);
        memset(&err, 0, sizeof err);
        assert_int_equal(cl_sd_notify("READY=1", &err), CL_EINVAL);
        assert_non_null(strstr(err.msg, "NOTIFY_SOCKET"));
    }
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(cl_sd_notify("READY=1", &err), CL_EINVAL);

    char name[64];
    snprintf(name, sizeof name, "@cl-sdnotify-long-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    char big[CL_SD_MAX_STATE + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memset(&err, 0, sizeof err);
    assert_int_equal(cl_sd_notify(big, &err), CL_EINVAL);
    assert_non_null(strstr(err.msg, "exceeds"));
    char buf[8];
    assert_true(recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0); /* nothing arrived */
    close(fd);

    setenv("NOTIFY_SOCKET", "/nonexistent/cl-sdnotify.sock", 1);
    memset(&err, 0, sizeof err);
    assert_int_equal(cl_sd_notify("READY=1", &err), CL_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/cl-sdnotify.sock"));
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abstract_and_path),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
