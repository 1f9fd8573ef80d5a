// Histogram with a shared-memory sub-histogram per block (shared atomics), merged into the global counts
// with one global atomic per bin and block. Integer atomics make the result exact in any order. x and
// counts are device pointers.
#include <cstdint>
#include <cuda_runtime.h>

__global__ static void histogram_kernel(int64_t n, const int32_t *x, int32_t *counts) {
    __shared__ int32_t local[256];
    for (int b = threadIdx.x; b < 256; b += blockDim.x) local[b] = 0;
    __syncthreads();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const uint32_t v = (uint32_t)x[i];
        if (v < 256u) atomicAdd(&local[v], 1);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += blockDim.x)
        if (local[b]) atomicAdd(&counts[b], local[b]);
}

extern "C" void histogram(int64_t n, const int32_t *x, int32_t *counts) {
    cudaMemset(counts, 0, 256 * sizeof(int32_t));
    if (n > 0) {
        const int64_t want = (n + 255) / 256;
        histogram_kernel<<<(unsigned)(want < 1024 ? want : 1024), 256>>>(n, x, counts);
    }
    cudaDeviceSynchronize();
}
