// SiLU, grid-stride loop; x and out are device pointers and may be the same memory.
#include <cstdint>
#include <cuda_runtime.h>

__global__ static void silu_kernel(int64_t n, const float *x, float *out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = x[i];
        out[i] = v / (1.0f + expf(-v));
    }
}

extern "C" void silu(int64_t n, const float *x, float *out) {
    if (n <= 0) return;
    const int threads = 256;
    const int64_t want = (n + threads - 1) / threads;
    const int blocks = (int)(want < 65535 ? want : 65535);
    silu_kernel<<<blocks, threads>>>(n, x, out);
    cudaDeviceSynchronize();
}
