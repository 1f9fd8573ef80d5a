// Log-softmax, one block per row: block max then block sum of exp (double) by warp shuffles and shared
// memory, then the output pass. x and out are device pointers and may be the same memory.
#include <cstdint>
#include <cuda_runtime.h>

__device__ static float nan_max(float a, float b) { return (b > a || a != a) ? b : a; }

__global__ static void log_softmax_kernel(int64_t cols, const float *x, float *out) {
    __shared__ float smax[32];
    __shared__ double ssum[32];
    const float *xr = x + blockIdx.x * cols;
    float *o = out + blockIdx.x * cols;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;

    float m = xr[0];
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = nan_max(m, xr[j]);
    for (int off = 16; off > 0; off >>= 1) m = nan_max(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (lane == 0) smax[warp] = m;
    __syncthreads();
    m = smax[0];
    for (int w = 1; w < nwarps; w++) m = nan_max(m, smax[w]);

    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += exp((double)xr[j] - (double)m);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) ssum[warp] = s;
    __syncthreads();
    s = 0.0;
    for (int w = 0; w < nwarps; w++) s += ssum[w];
    const double lse = log(s);
    __syncthreads();  // every thread has read xr[0] and its sums before anyone overwrites out (== x)
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) o[j] = (float)(((double)xr[j] - (double)m) - lse);
}

extern "C" void log_softmax(int64_t rows, int64_t cols, const float *x, float *out) {
    if (rows <= 0) return;
    log_softmax_kernel<<<(unsigned)rows, 256>>>(cols, x, out);
    cudaDeviceSynchronize();
}
