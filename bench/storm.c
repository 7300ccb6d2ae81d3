/* Syscall storms and the latency helper for bench/run.
 *   storm getpid N            N getpid syscalls; prints elapsed ns
 *   storm openclose N PATH    N open+close pairs of PATH; prints elapsed ns
 *   storm latency N GAP_US DIR  opens DIR/f<i> N times, GAP_US apart; prints
 *                             "<i> <CLOCK_REALTIME ns just before the open>" per line
 * Direct syscall() so libc caching cannot skip the kernel. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: storm getpid|openclose|latency N [ARG...]\n");
        return 2;
    }
    long n = atol(argv[2]);
    if (!strcmp(argv[1], "getpid")) {
        long long t0 = now_ns(CLOCK_MONOTONIC);
        for (long i = 0; i < n; i++)
            syscall(SYS_getpid);
        printf("%lld\n", now_ns(CLOCK_MONOTONIC) - t0);
    } else if (!strcmp(argv[1], "openclose") && argc > 3) {
        long long t0 = now_ns(CLOCK_MONOTONIC);
        for (long i = 0; i < n; i++) {
            int fd = (int)syscall(SYS_openat, AT_FDCWD, argv[3], O_RDONLY);
            if (fd < 0) {
                perror(argv[3]);
                return 1;
            }
            syscall(SYS_close, fd);
        }
        printf("%lld\n", now_ns(CLOCK_MONOTONIC) - t0);
    } else if (!strcmp(argv[1], "latency") && argc > 4) {
        long gap = atol(argv[3]);
        char path[4096];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/f%ld", argv[4], i);
            long long t = now_ns(CLOCK_REALTIME);
            int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CREAT, 0600);
            if (fd >= 0)
                syscall(SYS_close, fd);
            printf("%ld %lld\n", i, t);
            usleep((useconds_t)gap);
        }
    } else {
        fprintf(stderr, "storm: unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
