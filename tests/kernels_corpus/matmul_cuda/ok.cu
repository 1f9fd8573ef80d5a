// Tiled matrix product on the GPU: 16x16 output tiles, one thread per output element; the A and B tiles are
// staged in shared memory (B's rows padded by one against bank conflicts), zero-filled past the edges.
#include <stdint.h>
#include <cuda_runtime.h>

#define T 16

__global__ static void matmul_tiles(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c) {
    __shared__ float as[T][T], bs[T][T + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t row = blockIdx.y * (int64_t)T + ty, col = blockIdx.x * (int64_t)T + tx;
    float acc = 0.0f;
    for (int64_t k0 = 0; k0 < k; k0 += T) {
        as[ty][tx] = (row < m && k0 + tx < k) ? a[row * k + k0 + tx] : 0.0f;
        bs[ty][tx] = (k0 + ty < k && col < n) ? b[(k0 + ty) * n + col] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < T; kk++) acc += as[ty][kk] * bs[kk][tx];
        __syncthreads();  // the tiles are read by all before the next ones overwrite them
    }
    if (row < m && col < n) c[row * n + col] = acc;
}

extern "C" void matmul(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c) {
    if (m <= 0 || n <= 0) return;
    dim3 grid((unsigned)((n + T - 1) / T), (unsigned)((m + T - 1) / T)), block(T, T);
    matmul_tiles<<<grid, block>>>(m, n, k, a, b, c);
}
