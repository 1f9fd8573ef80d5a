// axpy on the GPU: out = a*x + y with a grid-stride loop, so a bounded grid covers any n.
#include <stdint.h>
#include <cuda_runtime.h>

__global__ static void axpy_kernel(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a * x[i] + y[i];
}

extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n <= 0) return;
    int64_t blocks = (n + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    axpy_kernel<<<(unsigned)blocks, 256>>>(n, a, x, y, out);
}
