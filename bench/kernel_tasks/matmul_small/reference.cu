// Tiled matmul: 16x16 tiles of a and b staged in shared memory, one output per thread, fp32 products summed
// in double in k order (deterministic). a and b are strided device views; c is contiguous.
#include <cstdint>
#include <cuda_runtime.h>

#define TILE 16

__global__ static void matmul_kernel(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_s0,
                                     int64_t a_s1, const float *b, int64_t b_s0, int64_t b_s1, float *c) {
    __shared__ float ta[TILE][TILE], tb[TILE][TILE];
    const int64_t i = blockIdx.y * (int64_t)TILE + threadIdx.y, j = blockIdx.x * (int64_t)TILE + threadIdx.x;
    double s = 0.0;
    for (int64_t p0 = 0; p0 < k; p0 += TILE) {
        const int64_t pa = p0 + threadIdx.x, pb = p0 + threadIdx.y;
        ta[threadIdx.y][threadIdx.x] = (i < m && pa < k) ? a[i * a_s0 + pa * a_s1] : 0.0f;
        tb[threadIdx.y][threadIdx.x] = (pb < k && j < n) ? b[pb * b_s0 + j * b_s1] : 0.0f;
        __syncthreads();
        const int lim = k - p0 < TILE ? (int)(k - p0) : TILE;
        for (int q = 0; q < lim; q++) s += (double)ta[threadIdx.y][q] * tb[q][threadIdx.x];
        __syncthreads();
    }
    if (i < m && j < n) c[i * n + j] = (float)s;
}

extern "C" void matmul(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_s0, int64_t a_s1,
                       const float *b, int64_t b_s0, int64_t b_s1, float *c) {
    if (m <= 0 || n <= 0) return;
    dim3 block(TILE, TILE), grid((unsigned)((n + TILE - 1) / TILE), (unsigned)((m + TILE - 1) / TILE));
    matmul_kernel<<<grid, block>>>(m, n, k, a, a_s0, a_s1, b, b_s0, b_s1, c);
    cudaDeviceSynchronize();
}
