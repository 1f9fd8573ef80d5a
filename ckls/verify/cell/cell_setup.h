/* How both cells (cell.c, cuda_cell.c) set themselves up: before they say their pid to the judge, root dropped,
 * death with the jail, no new privileges, the arena mapped at the judge's address, file and core limits, a
 * fixed stdout buffer and the SIGSYS handler; then the seccomp stages the judge writes them, and the kernel.
 * Included by each cell's single translation unit (static; the cell defines _GNU_SOURCE first). */
#ifndef CKLS_CELL_SETUP_H
#define CKLS_CELL_SETUP_H

#include <dlfcn.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cell_io.h"

/* Descriptors 3 (read-write) and 5 (read-only) are the arena: mapped side by side from arena_addr, then closed.
 * 0, or 3 (the cell's exit status for a failed setup) once it has said why. */
static int cell_setup(uint64_t arena_addr, uint64_t arena_bytes) {
    pid_t parent = getppid();
    if (getuid() == 0) { /* started as root (no user namespace): become nobody for good */
        if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
            say("ckls-cell: cannot drop root\n");
            return 3;
        }
    }
    /* Changing credentials cleared bubblewrap's parent-death signal: die with the jail again. (A root jail that
     * dropped its capabilities may not signal nobody: the judge then kills this process itself.) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || getppid() != parent) return 3;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        say("ckls-cell: no_new_privs failed\n");
        return 3;
    }
    void *rw = mmap((void *)(uintptr_t)arena_addr, arena_bytes, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED_NOREPLACE, 3, 0);
    void *ro = mmap((void *)(uintptr_t)(arena_addr + arena_bytes), arena_bytes, PROT_READ,
                    MAP_SHARED | MAP_FIXED_NOREPLACE, 5, 0);
    if (rw == MAP_FAILED || ro == MAP_FAILED || (uintptr_t)rw != arena_addr) {
        say("ckls-cell: cannot map the arena\n");
        return 3;
    }
    close(3);
    close(5);
    struct rlimit fsize = {16u << 20, 16u << 20}, core = {0, 0};
    if (setrlimit(RLIMIT_FSIZE, &fsize) || setrlimit(RLIMIT_CORE, &core)) {
        say("ckls-cell: cannot set limits\n");
        return 3;
    }
    static char outbuf[1 << 12];
    setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf); /* no lazy allocation or fstat after the filters */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    return 0;
}

/* The seccomp stage the judge wrote into descriptor fd (a BPF program), installed; the descriptor closed.
 * all_threads: on every thread of the process (TSYNC: the CUDA driver's threads too). 0, or -1. */
static int install_filter(int fd, int all_threads) {
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter)) return -1;
    struct sock_filter *prog = malloc((size_t)st.st_size);
    if (!prog || pread(fd, prog, (size_t)st.st_size, 0) != st.st_size) return -1;
    struct sock_fprog fp = {(unsigned short)(st.st_size / sizeof(struct sock_filter)), prog};
    long rc = all_threads ? syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp)
                          : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0);
    free(prog);
    close(fd);
    return rc == 0 ? 0 : -1;
}

/* The candidate's library (its constructors run now, under the filters in force) and in *fn its function; NULL
 * once it has said why (the cell then exits with status 4). */
static void *load_kernel(const char *path, void **fn) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "ckls-cell: cannot load the kernel: %s\n", dlerror());
        return NULL;
    }
    *fn = dlsym(lib, CELL_FUNCTION);
    if (!*fn) {
        fprintf(stderr, "ckls-cell: the kernel defines no function %s\n", CELL_FUNCTION);
        return NULL;
    }
    return lib;
}

#endif
