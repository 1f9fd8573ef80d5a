// Planted bug (uninitialised shared memory): the cross-warp step reads all 32 slots of a table sized for a
// 1024-thread block, but the block has 8 warps; slots 8..31 hold whatever shared memory held before.
#include <stdint.h>
#include <cuda_runtime.h>

#define THREADS 256
#define WARPS (THREADS / 32)

__device__ static float warp_max(float v) {
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ static float warp_sum(float v) {
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ static void __launch_bounds__(THREADS) softmax_rows(int64_t cols, const float *x, float *out) {
    __shared__ float red[32];
    const float *xr = x + blockIdx.x * cols;
    float *orow = out + blockIdx.x * cols;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += THREADS) m = fmaxf(m, xr[j]);
    m = warp_max(m);
    if (lane == 0) red[warp] = m;
    __syncthreads();
    // fmaxf skips a NaN, but the NaN still reaches the sum, so the row becomes NaN as with NumPy.
    m = warp_max(red[lane]);
    __syncthreads();  // every warp has read the max before red is reused for the sum

    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += THREADS) s += expf(xr[j] - m);
    s = warp_sum(s);
    if (lane == 0) red[warp] = s;
    __syncthreads();
    s = warp_sum(red[lane]);

    float inv = 1.0f / s;
    for (int64_t j = threadIdx.x; j < cols; j += THREADS) orow[j] = expf(xr[j] - m) * inv;
}

extern "C" void softmax(int64_t rows, int64_t cols, const float *x, float *out) {
    if (rows <= 0 || cols <= 0) return;
    softmax_rows<<<(unsigned)rows, THREADS>>>(cols, x, out);
}
