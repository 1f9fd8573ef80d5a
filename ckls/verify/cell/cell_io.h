/* What both cells (cell.c, cuda_cell.c) say and how they read and write their pipes: async-signal-safe writes to
 * the log, the SIGSYS handler that names a forbidden system call, and whole reads/writes that retry on EINTR.
 * Included by each cell's single translation unit (static functions). */
#ifndef CKLS_CELL_IO_H
#define CKLS_CELL_IO_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static void say(const char *msg) {
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    long arg0 = 0; /* the first argument (a socket's domain, a file's descriptor) makes the report readable */
#if defined(__x86_64__)
    arg0 = (long)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RDI];
#else
    (void)ctx;
#endif
    char buf[128];
    int n = snprintf(buf, sizeof buf, "\nckls-cell: forbidden system call %d arg0 %ld\n", si->si_syscall, arg0);
    ssize_t r = write(2, buf, (size_t)n);
    (void)r;
    _exit(159);
}

/* n bytes in full (writing: from p to fd, else from fd to p), retried on EINTR; 0, or -1 on error or end of file */
static int io_full(int fd, char *p, size_t n, int writing) {
    while (n) {
        ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int read_full(int fd, void *p, size_t n) { return io_full(fd, p, n, 0); }
static int write_full(int fd, const void *p, size_t n) { return io_full(fd, (char *)p, n, 1); }

#endif
