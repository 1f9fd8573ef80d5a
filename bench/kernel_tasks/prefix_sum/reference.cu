// Inclusive scan of one vector on one block: each thread scans a contiguous chunk in double, a block scan
// of the chunk totals (Hillis-Steele in shared memory) gives each chunk its offset. Deterministic order.
// x and out are device pointers and may be the same memory (each element is read before it is written,
// by the thread that owns it).
#include <cstdint>
#include <cuda_runtime.h>

#define THREADS 512

__global__ static void prefix_sum_kernel(int64_t n, const float *x, float *out) {
    __shared__ double tot[THREADS];
    const int64_t chunk = (n + THREADS - 1) / THREADS;
    const int64_t lo = threadIdx.x * chunk, hi = lo + chunk < n ? lo + chunk : n;
    double s = 0.0;
    for (int64_t i = lo; i < hi; i++) s += x[i];
    tot[threadIdx.x] = s;
    __syncthreads();
    for (int off = 1; off < THREADS; off <<= 1) {
        const double add = threadIdx.x >= off ? tot[threadIdx.x - off] : 0.0;
        __syncthreads();
        tot[threadIdx.x] += add;
        __syncthreads();
    }
    double run = threadIdx.x ? tot[threadIdx.x - 1] : 0.0;
    for (int64_t i = lo; i < hi; i++) {
        run += x[i];
        out[i] = (float)run;
    }
}

extern "C" void prefix_sum(int64_t n, const float *x, float *out) {
    if (n <= 0) return;
    prefix_sum_kernel<<<1, THREADS>>>(n, x, out);
    cudaDeviceSynchronize();
}
