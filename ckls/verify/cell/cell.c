/* The cell: the only process in which a candidate kernel ever runs.
 *
 * Started by the judge (ckls/verify/cell.py) inside bubblewrap: read-only /usr, an empty /tmp, its own /proc,
 * no network, no home, no workspace, an empty environment. It holds nothing but the kernel and the shared
 * arena where the judge lays out one call's inputs and outputs; the references, the comparison, the timing and
 * the verdict live in the judge's process, which this one cannot address. Nothing it says decides anything:
 * the judge reads the arena itself and only learns from this process whether it answered, crashed or hung.
 *
 * File descriptors: 0 requests, 1/2 the log, 3 the arena (read-write memfd), 4 answers, 5 the arena again
 * opened read-only (the view where read-only inputs live), 6 and 7 the two seccomp programs (BPF, built by
 * the judge with libseccomp once this process has said its pid). argv: kernel.so, arena address, arena size.
 *
 * Order: drop root; map the arena; SIGSYS handler; say the pid, wait for go; seccomp stage 1 (no exec, fork, sockets, ptrace, writes to
 * files); dlopen the kernel (its constructors run under stage 1); seccomp stage 2 (no file opens, no new
 * executable memory, no changes to the arena's mappings); then serve calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif
#ifdef CELL_OMP_INIT
#include <omp.h>
#endif

#include "stub.h" /* generated per contract: CELL_NWORDS, CELL_NPTRS, cell_ptr_words[], cell_invoke() */

#define MAGIC_REQ 0x636b6c7363656c6cULL /* "ckls cell" */
#define MAGIC_ANS 0x6c6c6563736c6b63ULL
#define MAX_WORDS 256

enum { OP_CALL = 1, OP_PING = 2, OP_FLUSH = 3 };
enum { FLAG_COPY = 1 }; /* sanitizer runs: each buffer copied into its own heap block, so ASan sees its ends */

struct request {
    uint64_t magic, nonce, op, threads, repeat, flags, nwords;
    uint64_t words[MAX_WORDS];
    uint64_t win_lo[MAX_WORDS], win_hi[MAX_WORDS]; /* per pointer argument: the bytes it may touch */
};

struct answer {
    uint64_t magic, nonce, status, mxcsr_before, mxcsr_after, ns;
};

#include "cell_setup.h"

static uint64_t read_mxcsr(void) {
#ifdef __x86_64__
    return _mm_getcsr();
#else
    return 0;
#endif
}

static void write_mxcsr(uint64_t v) {
#ifdef __x86_64__
    _mm_setcsr((unsigned)v);
#else
    (void)v;
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* FLAG_COPY: each distinct window gets a heap block of exactly its size; pointers are moved into it. */
static void copy_in(struct request *q, void **blocks, uint64_t *moved) {
    memcpy(moved, q->words, sizeof(uint64_t) * q->nwords);
    for (int i = 0; i < CELL_NPTRS; i++) {
        int w = cell_ptr_words[i];
        blocks[i] = NULL;
        for (int j = 0; j < i; j++) /* an aliased argument shares the earlier block */
            if (q->win_lo[j] == q->win_lo[i] && q->win_hi[j] == q->win_hi[i] && blocks[j]) {
                moved[w] = (uint64_t)(uintptr_t)blocks[j] + (q->words[w] - q->win_lo[i]);
                goto next;
            }
        size_t n = (size_t)(q->win_hi[i] - q->win_lo[i]);
        blocks[i] = malloc(n ? n : 1);
        if (n) memcpy(blocks[i], (void *)(uintptr_t)q->win_lo[i], n);
        moved[w] = (uint64_t)(uintptr_t)blocks[i] + (q->words[w] - q->win_lo[i]);
    next:;
    }
}

static void copy_out(struct request *q, void **blocks, uint64_t ro_lo) {
    for (int i = 0; i < CELL_NPTRS; i++)
        if (blocks[i]) {
            size_t n = (size_t)(q->win_hi[i] - q->win_lo[i]);
            if (n && q->win_lo[i] < ro_lo) memcpy((void *)(uintptr_t)q->win_lo[i], blocks[i], n);
            free(blocks[i]);
        }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        say("ckls-cell: usage: cell KERNEL.so ARENA_ADDR ARENA_BYTES\n");
        return 2;
    }
    uint64_t arena_addr = strtoull(argv[2], NULL, 0), arena_bytes = strtoull(argv[3], NULL, 0);
    if (cell_setup(arena_addr, arena_bytes)) return 3;

#ifdef CELL_OMP_INIT
    /* The ThreadSanitizer cell is linked to LLVM's libomp, which starts on its first call: it loads the tool named
     * by OMP_TOOL_LIBRARIES (archer, which tells TSan about OpenMP's synchronisation) and registers itself in a
     * file it creates in /dev/shm (LLVM 14 aborts when it cannot). Both are done here, by the cell's own reference
     * (the kernel, loaded RTLD_LOCAL later, cannot interpose it), before any filter and before any code of the
     * candidate is loaded: only the cell and libraries under /usr run now, as nobody, in the jail, whose /tmp and
     * /dev/shm are its own empty tmpfs. */
    (void)omp_get_max_threads();
#endif
    /* The filters name this process (signals and scheduling only for itself): the judge builds them once it
     * knows the pid, writes them into descriptors 6 and 7, and says go. */
    struct answer a = {MAGIC_ANS, 0, 0, 0, 0, (uint64_t)getpid()};
    static struct request q;
    if (write_full(4, &a, sizeof a) || read_full(0, &q, sizeof q) || q.magic != MAGIC_REQ) return 5;
    if (install_filter(6, 0)) {
        say("ckls-cell: seccomp stage 1 failed\n");
        return 3;
    }
    void *fn, *lib = load_kernel(argv[1], &fn);
    if (!lib) return 4;
    void (*set_threads)(int) = (void (*)(int))dlsym(lib, "omp_set_num_threads");
    void *flush = malloc(48u << 20);
    if (install_filter(7, 0)) {
        say("ckls-cell: seccomp stage 2 failed\n");
        return 3;
    }

    static uint64_t moved[MAX_WORDS];
    static void *blocks[MAX_WORDS];
    a.ns = 0;
    if (write_full(4, &a, sizeof a)) return 5; /* ready: both filters hold */
    for (;;) {
        if (read_full(0, &q, sizeof q)) return 0; /* the judge closed the channel */
        if (q.magic != MAGIC_REQ || (q.op == OP_CALL && q.nwords != CELL_NWORDS)) {
            say("ckls-cell: bad request\n");
            return 6;
        }
        memset(&a, 0, sizeof a);
        a.magic = MAGIC_ANS;
        a.nonce = q.nonce;
        if (q.op == OP_FLUSH && flush) {
            volatile char *f = flush;
            for (size_t i = 0; i < (48u << 20); i += 64) f[i] += 1;
        } else if (q.op == OP_CALL) {
            if (set_threads && q.threads) set_threads((int)q.threads);
            const uint64_t *w = q.words;
            if (q.flags & FLAG_COPY) {
                copy_in(&q, blocks, moved);
                w = moved;
            }
            uint64_t before = read_mxcsr(), t0 = now_ns();
            for (uint64_t r = 0; r < (q.repeat ? q.repeat : 1); r++) cell_invoke(fn, w);
            a.ns = now_ns() - t0;
            a.mxcsr_before = before;
            a.mxcsr_after = read_mxcsr();
            if (a.mxcsr_after != before) write_mxcsr(before);
            if (q.flags & FLAG_COPY) copy_out(&q, blocks, arena_addr + arena_bytes);
        }
        fflush(stdout);
        if (write_full(4, &a, sizeof a)) return 5;
    }
}
