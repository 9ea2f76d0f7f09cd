/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the store unit tests that start their own redis-server: a free loopback
 * port and a monotonic clock in milliseconds. Included after <cmocka.h> by one test program
 * at a time (static functions only).
 */
#ifndef TEST_STORE_UTIL_H
#define TEST_STORE_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

/* A loopback TCP port nobody listens on right now (the kernel's choice for a bind to 0). */
CL_UNUSED static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

CL_UNUSED static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

#endif
