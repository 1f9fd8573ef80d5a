// Planted bug (out-of-bounds read): pairs loaded as float2 when the pointers are 8-byte aligned; for odd n
// the last pair reads one float past x and y. The extra value is never used, so results stay right: only
// a memory checker sees it.
#include <stdint.h>
#include <cuda_runtime.h>

__global__ static void axpy_pairs(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; 2 * p < n; p += stride) {
        float2 u = ((const float2 *)x)[p], v = ((const float2 *)y)[p];
        out[2 * p] = a * u.x + v.x;
        if (2 * p + 1 < n) out[2 * p + 1] = a * u.y + v.y;
    }
}

__global__ static void axpy_scalar(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a * x[i] + y[i];
}

extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n <= 0) return;
    int64_t blocks = (n + 511) / 512;
    if (blocks > 2048) blocks = 2048;
    if ((((uintptr_t)x | (uintptr_t)y | (uintptr_t)out) & 7) == 0)
        axpy_pairs<<<(unsigned)blocks, 256>>>(n, a, x, y, out);
    else
        axpy_scalar<<<(unsigned)blocks, 256>>>(n, a, x, y, out);
}
