// Planted bug (hard-coded grid): 64 blocks of 256 threads, one element each; n beyond 16384 is never written.
#include <stdint.h>
#include <cuda_runtime.h>

__global__ static void axpy_kernel(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[i];
}

extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n <= 0) return;
    axpy_kernel<<<64, 256>>>(n, a, x, y, out);
}
