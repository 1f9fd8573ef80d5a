/* What both cells (cell.c, cuda_cell.c) say and how they read and write their pipes: async-signal-safe writes to
 * the log, the SIGSYS handler that names a forbidden system call, and whole reads/writes that retry on EINTR.
 * Included by each cell's single translation unit (static functions). */
#ifndef CKLS_CELL_IO_H
#define CKLS_CELL_IO_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void say(const char *msg) {
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "\nckls-cell: forbidden system call %d\n", si->si_syscall);
    ssize_t r = write(2, buf, (size_t)n);
    (void)r;
    _exit(159);
}

static int read_full(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

#endif
