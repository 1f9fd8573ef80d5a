/* The CUDA cell: the only process in which a CUDA candidate (its host code and its GPU kernels) ever runs.
 *
 * The CUDA twin of cell.c, started by the judge (ckls/verify/cudacell.py) inside bubblewrap with the NVIDIA
 * device nodes, a read-only /sys and its own /proc (the driver reads /proc/driver/nvidia), no network, no home,
 * no workspace, an empty environment. It holds the candidate's shared object (the launcher, built by nvcc with
 * the CUDA runtime inside), the device mirrors of the judge's buffers and the shared arena where the judge lays
 * out each call's buffers. The references, the comparison, the verdict and the timing live in the judge's
 * process. Nothing this process says decides anything: the judge reads the arena itself.
 *
 * File descriptors: 0 requests, 1/2 the log, 3 the arena (read-write memfd), 4 answers, 5 the arena again
 * read-only (unused here: no read-only inputs on a GPU), 6, 7 and 8 the three seccomp programs (built by the
 * judge with libseccomp once this process has said its pid).
 * argv: kernel.so, arena address, arena size, path of libcuda.so.1, hold (microseconds).
 *
 * Order: drop root; map the arena; SIGSYS handler; say the pid, wait for go;
 *   stage 1: load libcuda, cuInit, the primary context of device 0, the judge's PTX (shared-memory scribbler,
 *            GPU hold), events, a hold stream, the L2 flush buffer, a first allocation and copies;
 *   stage 2: dlopen the candidate (its constructors and the CUDA runtime's registration run now), say ready;
 *            serve the first call (the warm-up: the CUDA runtime inside the candidate starts there);
 *   stage 3: every later call. Each filter is installed on every thread (TSYNC): the driver's threads too.
 *
 * The request and answer are cell.c's. A call's pointer words are arena addresses; win_lo/win_hi give, per
 * pointer argument, the whole guarded buffer it lies in. Each distinct buffer gets a device allocation of its
 * size (kept until OP_RESET), the pointer is moved into it, the buffer is uploaded whole before the call and
 * downloaded whole on the legacy default stream right after the launcher returns. The answer's status is the
 * first CUresult that failed (0: none), its mxcsr_before field the step that failed, its ns the time between
 * CUDA events around the launcher (reported, never trusted: the judge times on its own clock).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stub.h" /* generated per contract: CELL_NWORDS, CELL_NPTRS, cell_ptr_words[], cell_invoke(), judge_ptx */

#define MAGIC_REQ 0x636b6c7363656c6cULL
#define MAGIC_ANS 0x6c6c6563736c6b63ULL
#define MAX_WORDS 256
#define MAX_MIRRORS 4096

enum { OP_CALL = 1, OP_PING = 2, OP_FLUSH = 3, OP_REFRESH = 5, OP_RESET = 6 };
enum { FLAG_NOCOPY = 2, FLAG_SCRIBBLE = 4, FLAG_HOLD = 8, FLAG_SYNC = 16 };
enum { STEP_ALLOC = 1, STEP_UPLOAD, STEP_PREPARE, STEP_CALL, STEP_DOWNLOAD, STEP_SYNC, STEP_FLUSH };

struct request {
    uint64_t magic, nonce, op, threads, repeat, flags, nwords;
    uint64_t words[MAX_WORDS];
    uint64_t win_lo[MAX_WORDS], win_hi[MAX_WORDS];
};

struct answer {
    uint64_t magic, nonce, status, step, unused, ns;
};

/* ---- the driver API, as much as the cell needs (loaded with dlopen: no toolkit is needed to build this) ---- */
typedef int CUresult;
typedef uint64_t CUdeviceptr;
typedef void *CUctx, *CUmod, *CUfn, *CUstream, *CUevent;
static CUresult (*cuInit)(unsigned);
static CUresult (*cuDeviceGet)(int *, int);
static CUresult (*cuDeviceGetAttribute)(int *, int, int);
static CUresult (*cuDevicePrimaryCtxRetain)(CUctx *, int);
static CUresult (*cuCtxSetCurrent)(CUctx);
static CUresult (*cuCtxSynchronize)(void);
static CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*cuMemFree)(CUdeviceptr);
static CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
static CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
static CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
static CUresult (*cuEventCreate)(CUevent *, unsigned);
static CUresult (*cuEventRecord)(CUevent, CUstream);
static CUresult (*cuEventSynchronize)(CUevent);
static CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
static CUresult (*cuStreamCreate)(CUstream *, unsigned);
static CUresult (*cuModuleLoadData)(CUmod *, const void *);
static CUresult (*cuModuleGetFunction)(CUfn *, CUmod, const char *);
static CUresult (*cuFuncSetAttribute)(CUfn, int, int);
static CUresult (*cuLaunchKernel)(CUfn, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                  CUstream, void **, void **);
static CUresult (*cuGetErrorName)(CUresult, const char **);

#define ATTR_SMS 16
#define ATTR_CLOCK_KHZ 13
#define ATTR_L2_BYTES 38
#define ATTR_MAX_THREADS_PER_SM 39
#define ATTR_SMEM_OPTIN 97
#define FUNC_MAX_DYNAMIC_SMEM 8
#define FUNC_CARVEOUT 9
#define STREAM_NON_BLOCKING 1

/* The judge's kernels (hand-written PTX from cudadrv.py, in stub.h as judge_ptx; JIT-compiled by the driver
 * in stage 1): ckls_scribble fills a block's dynamic shared memory with a NaN, ckls_hold spins for a number of
 * clock cycles. */

#include "cell_setup.h"

static const char *err_name(CUresult rc) {
    const char *name = NULL;
    if (cuGetErrorName) cuGetErrorName(rc, &name);
    return name ? name : "?";
}

static void die_driver(const char *what, CUresult rc) {
    fprintf(stderr, "ckls-cell: %s failed: %s (%d)\n", what, err_name(rc), rc);
    exit(3);
}

#define NEED(call)                                                                                                 \
    do {                                                                                                           \
        CUresult rc_ = (call);                                                                                     \
        if (rc_) die_driver(#call, rc_);                                                                           \
    } while (0)

static int load_driver(const char *path) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        fprintf(stderr, "ckls-cell: cannot load the CUDA driver %s: %s\n", path, dlerror());
        return -1;
    }
#define SYM(var, name)                                                                                             \
    if (!(*(void **)&var = dlsym(lib, name))) {                                                                    \
        fprintf(stderr, "ckls-cell: the CUDA driver has no %s\n", name);                                           \
        return -1;                                                                                                 \
    }
    SYM(cuInit, "cuInit");
    SYM(cuDeviceGet, "cuDeviceGet");
    SYM(cuDeviceGetAttribute, "cuDeviceGetAttribute");
    SYM(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    SYM(cuCtxSetCurrent, "cuCtxSetCurrent");
    SYM(cuCtxSynchronize, "cuCtxSynchronize");
    SYM(cuMemAlloc, "cuMemAlloc_v2");
    SYM(cuMemFree, "cuMemFree_v2");
    SYM(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    SYM(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    SYM(cuMemsetD8Async, "cuMemsetD8Async");
    SYM(cuEventCreate, "cuEventCreate");
    SYM(cuEventRecord, "cuEventRecord");
    SYM(cuEventSynchronize, "cuEventSynchronize");
    SYM(cuEventElapsedTime, "cuEventElapsedTime");
    SYM(cuStreamCreate, "cuStreamCreate");
    SYM(cuModuleLoadData, "cuModuleLoadData");
    SYM(cuModuleGetFunction, "cuModuleGetFunction");
    SYM(cuFuncSetAttribute, "cuFuncSetAttribute");
    SYM(cuLaunchKernel, "cuLaunchKernel");
    SYM(cuGetErrorName, "cuGetErrorName");
#undef SYM
    return 0;
}

/* ---- device mirrors of the judge's buffers ---- */
struct mirror {
    uint64_t lo, hi;
    CUdeviceptr d;
};
static struct mirror mirrors[MAX_MIRRORS];
static int nmirrors;
static uint64_t arena_lo, arena_hi; /* the read-write view; the read-only one follows it */

static int mirror_of(uint64_t lo, uint64_t hi, CUresult *rc) {
    for (int i = 0; i < nmirrors; i++)
        if (mirrors[i].lo == lo && mirrors[i].hi == hi) return i;
    if (nmirrors == MAX_MIRRORS) {
        *rc = 2; /* CUDA_ERROR_OUT_OF_MEMORY */
        return -1;
    }
    CUdeviceptr d = 0;
    *rc = cuMemAlloc(&d, (size_t)(hi - lo));
    if (*rc) return -1;
    mirrors[nmirrors] = (struct mirror){lo, hi, d};
    return nmirrors++;
}

static void free_mirrors(void) {
    for (int i = 0; i < nmirrors; i++) cuMemFree(mirrors[i].d);
    nmirrors = 0;
}

/* The buffers of one request: pointer words moved to the device; uniq[] the distinct mirrors. */
static int map_request(const struct request *q, uint64_t *moved, int *uniq, int *nuniq, CUresult *rc) {
    memcpy(moved, q->words, sizeof(uint64_t) * q->nwords);
    *nuniq = 0;
    for (int i = 0; i < CELL_NPTRS; i++) {
        int w = cell_ptr_words[i];
        uint64_t lo = q->win_lo[i], hi = q->win_hi[i];
        if (hi <= lo || lo < arena_lo || hi > arena_hi || q->words[w] < lo || q->words[w] >= hi) {
            say("ckls-cell: bad request (a buffer outside the arena)\n");
            exit(6);
        }
        int m = mirror_of(lo, hi, rc);
        if (m < 0) return -1;
        moved[w] = mirrors[m].d + (q->words[w] - lo);
        int seen = 0;
        for (int j = 0; j < *nuniq; j++) seen |= uniq[j] == m;
        if (!seen) uniq[(*nuniq)++] = m;
    }
    return 0;
}

static CUresult download(const int *uniq, int nuniq) {
    for (int j = 0; j < nuniq; j++) {
        struct mirror *m = &mirrors[uniq[j]];
        CUresult rc = cuMemcpyDtoH((void *)(uintptr_t)m->lo, m->d, (size_t)(m->hi - m->lo));
        if (rc) return rc;
    }
    return 0;
}

#ifdef CELL_SURVEY
#include "cell_trace.h" /* the diagnostic builds of bench/cuda_survey.py */
#endif

/* Stage n's seccomp program (in descriptor fd), on every thread: the driver's too. */
static int stage_filter(int fd, int stage) {
#ifdef CELL_SURVEY
    return survey_filter(fd, stage);
#else
    (void)stage;
    return install_filter(fd, 1);
#endif
}

int main(int argc, char **argv) {
    if (argc != 6) {
        say("ckls-cell: usage: cell_cuda KERNEL.so ARENA_ADDR ARENA_BYTES LIBCUDA HOLD_US\n");
        return 2;
    }
    uint64_t arena_addr = strtoull(argv[2], NULL, 0), arena_bytes = strtoull(argv[3], NULL, 0);
    double hold_us = strtod(argv[5], NULL);
    if (cell_setup(arena_addr, arena_bytes)) return 3;
    arena_lo = arena_addr;
    arena_hi = arena_addr + arena_bytes;

    struct answer a = {MAGIC_ANS, 0, 0, 0, 0, (uint64_t)getpid()};
    static struct request q;
    if (write_full(4, &a, sizeof a) || read_full(0, &q, sizeof q) || q.magic != MAGIC_REQ) return 5;

    /* ---- stage 1: the driver ---- */
    if (stage_filter(6, 1)) {
        say("ckls-cell: seccomp stage 1 failed\n");
        return 3;
    }
    if (load_driver(argv[4])) return 3;
    NEED(cuInit(0));
    int dev = 0, sms = 0, smem = 0, l2 = 0, clock_khz = 0, per_sm = 0;
    NEED(cuDeviceGet(&dev, 0));
    CUctx ctx = NULL;
    NEED(cuDevicePrimaryCtxRetain(&ctx, dev));
    NEED(cuCtxSetCurrent(ctx));
    NEED(cuDeviceGetAttribute(&sms, ATTR_SMS, dev));
    NEED(cuDeviceGetAttribute(&smem, ATTR_SMEM_OPTIN, dev));
    NEED(cuDeviceGetAttribute(&l2, ATTR_L2_BYTES, dev));
    NEED(cuDeviceGetAttribute(&clock_khz, ATTR_CLOCK_KHZ, dev));
    NEED(cuDeviceGetAttribute(&per_sm, ATTR_MAX_THREADS_PER_SM, dev));
    per_sm = per_sm / 1024 > 0 ? per_sm / 1024 : 1;
    CUmod mod = NULL;
    CUfn scribble = NULL, hold = NULL;
    NEED(cuModuleLoadData(&mod, judge_ptx));
    NEED(cuModuleGetFunction(&scribble, mod, "ckls_scribble"));
    NEED(cuModuleGetFunction(&hold, mod, "ckls_hold"));
    NEED(cuFuncSetAttribute(scribble, FUNC_MAX_DYNAMIC_SMEM, smem));
    cuFuncSetAttribute(scribble, FUNC_CARVEOUT, 100);
    CUstream hold_stream = NULL;
    NEED(cuStreamCreate(&hold_stream, STREAM_NON_BLOCKING));
    CUevent ev0 = NULL, ev1 = NULL;
    NEED(cuEventCreate(&ev0, 0));
    NEED(cuEventCreate(&ev1, 0));
    size_t flush_bytes = 2 * (size_t)l2 > (1u << 20) ? 2 * (size_t)l2 : (1u << 20);
    CUdeviceptr flush = 0;
    NEED(cuMemAlloc(&flush, flush_bytes));
    { /* the driver's lazy parts (staging buffers for copies, the launch path) start here, not in stage 3 */
        static char host[1 << 20];
        NEED(cuMemcpyHtoD(flush, host, sizeof host));
        NEED(cuMemcpyDtoH(host, flush, sizeof host));
        uint32_t nwords = (uint32_t)smem / 4, pattern = 0x7FC0A5A5;
        void *params[2] = {&nwords, &pattern};
        NEED(cuLaunchKernel(scribble, (unsigned)sms, 1, 1, 1024, 1, 1, (unsigned)smem, NULL, params, NULL));
        NEED(cuCtxSynchronize());
    }
    uint64_t hold_cycles = (uint64_t)(hold_us * 1e-3 * clock_khz);

    /* ---- stage 2: the candidate loads ---- */
    if (stage_filter(7, 2)) {
        say("ckls-cell: seccomp stage 2 failed\n");
        return 3;
    }
    void *fn, *lib = load_kernel(argv[1], &fn);
    if (!lib) return 4;
    a.ns = 0;
    if (write_full(4, &a, sizeof a)) return 5; /* ready: the next call is the warm-up, under stage 2 */

    static uint64_t moved[MAX_WORDS];
    static int uniq[MAX_WORDS];
    int sealed = 0;
    for (;;) {
        if (read_full(0, &q, sizeof q)) {
            free_mirrors();
            return 0; /* the judge closed the channel */
        }
        if (q.magic != MAGIC_REQ || ((q.op == OP_CALL || q.op == OP_REFRESH) && q.nwords != CELL_NWORDS)) {
            say("ckls-cell: bad request\n");
            return 6;
        }
        memset(&a, 0, sizeof a);
        a.magic = MAGIC_ANS;
        a.nonce = q.nonce;
        CUresult rc = 0;
        int nuniq = 0;
        if (q.op == OP_FLUSH) {
            if ((rc = cuMemsetD8Async(flush, 0x5A, flush_bytes, NULL)) || (rc = cuCtxSynchronize()))
                a.step = STEP_FLUSH;
        } else if (q.op == OP_RESET) {
            free_mirrors();
        } else if (q.op == OP_REFRESH) { /* after the settle time: everything finished, downloaded again */
            if (map_request(&q, moved, uniq, &nuniq, &rc)) a.step = STEP_ALLOC;
            else if ((rc = cuCtxSynchronize())) a.step = STEP_SYNC;
            else if ((rc = download(uniq, nuniq))) a.step = STEP_DOWNLOAD;
        } else if (q.op == OP_CALL) {
            if (map_request(&q, moved, uniq, &nuniq, &rc)) {
                a.step = STEP_ALLOC;
                goto answer;
            }
            if (!(q.flags & FLAG_NOCOPY))
                for (int j = 0; j < nuniq; j++) {
                    struct mirror *m = &mirrors[uniq[j]];
                    if ((rc = cuMemcpyHtoD(m->d, (const void *)(uintptr_t)m->lo, (size_t)(m->hi - m->lo)))) {
                        a.step = STEP_UPLOAD;
                        goto answer;
                    }
                }
            if (q.flags & FLAG_SCRIBBLE) { /* one 1024-thread block per multiprocessor, all its shared memory */
                uint32_t nwords = (uint32_t)smem / 4, pattern = 0x7FC0A5A5;
                void *params[2] = {&nwords, &pattern};
                rc = cuLaunchKernel(scribble, (unsigned)sms, 1, 1, 1024, 1, 1, (unsigned)smem, NULL, params, NULL);
            }
            if (!rc && (q.flags & FLAG_HOLD) && hold_cycles) { /* every thread slot busy, from a stream 0 ignores */
                void *params[1] = {&hold_cycles};
                rc = cuLaunchKernel(hold, (unsigned)(sms * per_sm), 1, 1, 1024, 1, 1, 0, hold_stream, params, NULL);
            }
            if (rc || (rc = cuEventRecord(ev0, NULL))) {
                a.step = STEP_PREPARE;
                goto answer;
            }
            for (uint64_t r = 0; r < (q.repeat ? q.repeat : 1); r++) cell_invoke(fn, moved);
            if ((rc = cuEventRecord(ev1, NULL))) {
                a.step = STEP_CALL;
                goto answer;
            }
            if (!(q.flags & FLAG_NOCOPY) && (rc = download(uniq, nuniq))) {
                a.step = STEP_DOWNLOAD;
                goto answer;
            }
            if ((q.flags & FLAG_SYNC) && (rc = cuCtxSynchronize())) {
                a.step = STEP_SYNC;
                goto answer;
            }
            float ms = 0;
            if (cuEventSynchronize(ev1) == 0 && cuEventElapsedTime(&ms, ev0, ev1) == 0) a.ns = (uint64_t)(ms * 1e6);
        }
    answer:
        a.status = (uint64_t)(int64_t)rc;
        fflush(stdout);
        if (!sealed && q.op == OP_CALL) { /* the warm-up call is done: stage 3 from here on */
            if (stage_filter(8, 3)) {
                say("ckls-cell: seccomp stage 3 failed\n");
                return 3;
            }
            sealed = 1;
        }
        if (write_full(4, &a, sizeof a)) return 5;
    }
}
