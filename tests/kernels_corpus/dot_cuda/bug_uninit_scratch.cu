// Planted bug (uninitialised device memory): small inputs launch only as many partial-sum blocks as they
// need, but the final step still adds all 128 scratch slots, of which the rest were never written
// (or hold a previous call's partials).
#include <stdint.h>
#include <cuda_runtime.h>

#define THREADS 256
#define BLOCKS 128

__device__ static double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

__global__ static void dot_partial(int64_t n, const double *x, const double *y, double *part) {
    __shared__ double sh[THREADS];
    double acc = 0.0;
    for (int64_t i = blockIdx.x * (int64_t)THREADS + threadIdx.x; i < n; i += (int64_t)gridDim.x * THREADS)
        acc += x[i] * y[i];
    double s = block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ static void dot_final(const double *part, double *out) {
    __shared__ double sh[BLOCKS];
    double s = block_sum(part[threadIdx.x], sh);
    if (threadIdx.x == 0) *out = s;
}

extern "C" void dot(int64_t n, const double *x, const double *y, double *out) {
    static double *part;
    if (!part && cudaMalloc((void **)&part, BLOCKS * sizeof(double)) != cudaSuccess) return;
    int64_t blocks = (n + THREADS - 1) / THREADS;
    if (blocks > BLOCKS) blocks = BLOCKS;
    if (blocks > 0) dot_partial<<<(unsigned)blocks, THREADS>>>(n, x, y, part);
    dot_final<<<1, BLOCKS>>>(part, out);
}
