// Planted bug (timing trick): a call with the same pointers, size and scalar as the previous one is assumed
// to have the same answer already in place and launches nothing.
#include <stdint.h>
#include <cuda_runtime.h>

__global__ static void axpy_kernel(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a * x[i] + y[i];
}

extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    static const float *lx, *ly;
    static float *lo, la;
    static int64_t ln = -1;
    if (x == lx && y == ly && out == lo && n == ln && a == la) return;
    lx = x; ly = y; lo = out; ln = n; la = a;
    if (n <= 0) return;
    int64_t blocks = (n + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    axpy_kernel<<<(unsigned)blocks, 256>>>(n, a, x, y, out);
}
