// Planted bug (returns before the kernel ends): the work goes to a private non-blocking stream and the
// launcher returns at once, so a caller reading the results on stream 0 may see them half-written.
#include <stdint.h>
#include <cuda_runtime.h>

__global__ static void axpy_kernel(int64_t n, float a, const float *x, const float *y, float *out) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a * x[i] + y[i];
}

extern "C" void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    static cudaStream_t s;
    if (!s) cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (n <= 0) return;
    int64_t blocks = (n + 255) / 256;
    if (blocks > 4096) blocks = 4096;
    axpy_kernel<<<(unsigned)blocks, 256, 0, s>>>(n, a, x, y, out);
}
