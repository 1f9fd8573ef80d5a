// Norm on the GPU: per-thread double partial sums, a warp-shuffle then shared-memory block reduction, one
// block so the summation order is fixed (deterministic). x is a device pointer; out[0] is written on device.
#include <cstdint>
#include <cuda_runtime.h>

__global__ static void l2norm_kernel(int64_t n, const float *x, float *out) {
    __shared__ double warp_sums[32];
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += (double)x[i] * x[i];
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = s;
    __syncthreads();
    if (warp == 0) {
        const int nwarps = (blockDim.x + 31) >> 5;
        s = lane < nwarps ? warp_sums[lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
        if (lane == 0) out[0] = (float)sqrt(s);
    }
}

extern "C" void l2norm(int64_t n, const float *x, float *out) {
    l2norm_kernel<<<1, 1024>>>(n, x, out);
    cudaDeviceSynchronize();
}
