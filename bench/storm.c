/* Syscall storms and the latency helper for bench/run.
 *   storm getpid N              N getpid syscalls
 *   storm openclose N PATH      N open+close pairs of PATH
 *     both print "<thread CPU ns> <wall ns>": CPU time is what the syscalls
 *     cost this thread (kernel time incl. any BPF run in it), unaffected by
 *     other load on a shared machine
 *   storm close SECONDS RATE    close(-1) (fails fast, one selected event per
 *                               call) at RATE calls/s (0: as fast as possible)
 *                               for SECONDS; prints "<calls> <wall ns>"
 *   storm latency N GAP_US DIR  opens DIR/f<i> N times, GAP_US apart; prints
 *                               "<i> <CLOCK_REALTIME ns just before the open>" per line
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
        fprintf(stderr, "usage: storm getpid|openclose|close|latency N [ARG...]\n");
        return 2;
    }
    long n = atol(argv[2]);
    long long c0 = now_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns(CLOCK_MONOTONIC);
    if (!strcmp(argv[1], "getpid")) {
        for (long i = 0; i < n; i++)
            syscall(SYS_getpid);
        printf("%lld %lld\n", now_ns(CLOCK_THREAD_CPUTIME_ID) - c0, now_ns(CLOCK_MONOTONIC) - t0);
    } else if (!strcmp(argv[1], "openclose") && argc > 3) {
        for (long i = 0; i < n; i++) {
            int fd = (int)syscall(SYS_openat, AT_FDCWD, argv[3], O_RDONLY);
            if (fd < 0) {
                perror(argv[3]);
                return 1;
            }
            syscall(SYS_close, fd);
        }
        printf("%lld %lld\n", now_ns(CLOCK_THREAD_CPUTIME_ID) - c0, now_ns(CLOCK_MONOTONIC) - t0);
    } else if (!strcmp(argv[1], "close") && argc > 3) {
        /* Paced: every 64 calls, compare the count with RATE * elapsed and
         * sleep (or spin, for short gaps) while ahead. */
        double rate = atof(argv[3]);
        long long end = t0 + n * 1000000000LL, now = t0, calls = 0;
        while (now < end) {
            for (int i = 0; i < 64; i++)
                syscall(SYS_close, -1);
            calls += 64;
            now = now_ns(CLOCK_MONOTONIC);
            while (rate > 0 && now < end) {
                long long due = t0 + (long long)(calls / rate * 1e9);
                if (due <= now)
                    break;
                if (due - now > 50000) {
                    struct timespec ts = {0, due - now};
                    nanosleep(&ts, NULL);
                }
                now = now_ns(CLOCK_MONOTONIC);
            }
        }
        printf("%lld %lld\n", calls, now_ns(CLOCK_MONOTONIC) - t0);
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
