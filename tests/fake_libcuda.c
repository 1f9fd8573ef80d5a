/* A stand-in for libcuda.so.1 where there is no GPU: "device" memory is host memory, copies are memcpy, kernels
 * launch nothing. Enough for the CUDA cell to start, mirror buffers and call a launcher, so its jail, its
 * seccomp stages and its protocol are tested on any machine (tests/test_verify_cuda.py). A "CUDA candidate"
 * for it is plain C that computes through the "device pointers" it is given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
CUresult cuInit(unsigned f) { (void)f; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int i) { *d = i; return i == 0 ? 0 : 101; }
CUresult cuDeviceGetName(char *name, int len, int d) { (void)d; strncpy(name, "fake GPU", (size_t)len); return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, int d) {
    (void)d;
    switch (attr) {
    case 16: *v = 2; break;            /* multiprocessors */
    case 13: *v = 1000000; break;      /* clock, kHz */
    case 36: *v = 1000000; break;      /* memory clock, kHz */
    case 37: *v = 256; break;          /* bus width */
    case 38: *v = 1 << 20; break;      /* L2 */
    case 39: *v = 2048; break;         /* threads per multiprocessor */
    case 75: *v = 9; break;
    case 76: *v = 0; break;
    case 97: *v = 48 << 10; break;     /* shared memory per block */
    default: *v = 0;
    }
    return 0;
}
static int ctx_dummy;
CUresult cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = &ctx_dummy; return 0; }
CUresult cuCtxSetCurrent(void *c) { (void)c; return 0; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuMemAlloc_v2(uint64_t *p, size_t n) {
    void *m = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!m) return 2;
    *p = (uint64_t)(uintptr_t)m;
    return 0;
}
CUresult cuMemFree_v2(uint64_t p) { free((void *)(uintptr_t)p); return 0; }
CUresult cuMemcpyHtoD_v2(uint64_t d, const void *h, size_t n) { memcpy((void *)(uintptr_t)d, h, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *h, uint64_t d, size_t n) { memcpy(h, (const void *)(uintptr_t)d, n); return 0; }
CUresult cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void *s) { (void)s; memset((void *)(uintptr_t)d, v, n); return 0; }
static int obj_dummy;
CUresult cuEventCreate(void **e, unsigned f) { (void)f; *e = &obj_dummy; return 0; }
CUresult cuEventRecord(void *e, void *s) { (void)e; (void)s; return 0; }
CUresult cuEventSynchronize(void *e) { (void)e; return 0; }
CUresult cuEventElapsedTime(float *ms, void *a, void *b) { (void)a; (void)b; *ms = 0.001f; return 0; }
CUresult cuStreamCreate(void **s, unsigned f) { (void)f; *s = &obj_dummy; return 0; }
CUresult cuModuleLoadData(void **m, const void *img) { (void)img; *m = &obj_dummy; return 0; }
CUresult cuModuleGetFunction(void **f, void *m, const char *name) { (void)m; (void)name; *f = &obj_dummy; return 0; }
CUresult cuFuncSetAttribute(void *f, int a, int v) { (void)f; (void)a; (void)v; return 0; }
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, void *s, void **p, void **x) {
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)smem; (void)s; (void)p; (void)x;
    return 0;
}
CUresult cuGetErrorName(CUresult rc, const char **name) { *name = rc ? "CUDA_ERROR_FAKE" : "CUDA_SUCCESS"; return 0; }
