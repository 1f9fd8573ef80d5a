// Planted bug (reduction assumes a power-of-two block): the partial sums use 192-thread blocks (six warps,
// "better occupancy"), but the halving tree drops a slot whenever an odd count is halved.
#include <stdint.h>
#include <cuda_runtime.h>

#define THREADS 192
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
    for (int64_t i = blockIdx.x * (int64_t)THREADS + threadIdx.x; i < n; i += (int64_t)BLOCKS * THREADS)
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
    dot_partial<<<BLOCKS, THREADS>>>(n, x, y, part);
    dot_final<<<1, BLOCKS>>>(part, out);
}
