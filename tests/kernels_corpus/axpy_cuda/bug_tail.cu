// Planted bug (tail): one thread per element and no bounds check, so the last block writes past n.
#include <stdint.h>
#include <cuda_runtime.h>

__global__ static void axpy_kernel(float a, const float *x, const float *y, float *out) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    out[i] = a * x[i] + y[i];
}

extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    if (n <= 0) return;
    axpy_kernel<<<(unsigned)((n + 255) / 256), 256>>>(a, x, y, out);
}
