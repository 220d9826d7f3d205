// Fourier shell correlation on the GPU: one pass over the two half spectra, no float atomics.
//
// Stage 1: each warp owns a histogram of shells in shared memory. Per step the 32 lanes read 32
// consecutive voxels (coalesced); lanes that fall in the same shell are grouped with
// __match_any_sync and the lowest lane adds its group's terms in lane order, so no two lanes
// ever write the same word and the order of additions is fixed. The block then adds its warps'
// histograms in warp order into its own row of a partial array.
// Stage 2: one thread per (shell, sum) adds the block rows in block order.
// The grid size depends only on the problem size, so results are bitwise reproducible.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/fsc.h"
#include "spk/fsc.h"

namespace spk::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr std::int64_t kMaxBlocks = 1024;

template <typename C>
__global__ void fsc_partial_kernel(const C* __restrict__ f1, const C* __restrict__ f2, index_t nz,
                                   index_t ny, index_t nx, double az, double ay, double ax,
                                   int n_shells, double* __restrict__ partial) {
  extern __shared__ double smem[];
  const int row = n_shells * kFscSums;
  double* hist = smem;                          // [kWarps][row]
  double* scratch = smem + kWarps * row;        // [kWarps][32][kFscSums]
  for (int j = threadIdx.x; j < kWarps * row; j += blockDim.x) hist[j] = 0.0;
  __syncthreads();

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  double* my_hist = hist + warp * row;
  double* my_scratch = scratch + warp * 32 * kFscSums;
  const index_t nxh = nx / 2 + 1;
  const index_t total = nz * ny * nxh;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  const bool small = total < (static_cast<index_t>(1) << 32);

  // `base` is the same for all lanes of a warp, so every lane takes part in each step.
  for (index_t base = static_cast<index_t>(blockIdx.x) * blockDim.x + warp * 32; base < total;
       base += stride) {
    const index_t i = base + lane;
    int s = -1;
    double num = 0.0, p1 = 0.0, p2 = 0.0, mult = 0.0;
    if (i < total) {
      // 64-bit division is a long instruction sequence on the GPU; every volume below 2^32
      // half-spectrum voxels (beyond 1600^3) decomposes its index in 32 bits.
      index_t ix, iy, iz;
      if (small) {
        const unsigned u = static_cast<unsigned>(i), w = static_cast<unsigned>(nxh);
        const unsigned t = u / w;
        ix = u - t * w;
        iy = t % static_cast<unsigned>(ny);
        iz = t / static_cast<unsigned>(ny);
      } else {
        ix = i % nxh;
        const index_t t = i / nxh;
        iy = t % ny;
        iz = t / ny;
      }
      s = fsc_shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells);
      if (s >= 0) {
        const C a = f1[i];
        const C b = f2[i];
        mult = fsc_multiplicity(ix, nx);
        fsc_voxel_terms(a.x, a.y, b.x, b.y, mult, &num, &p1, &p2);
      }
    }
    my_scratch[lane * kFscSums + kFscNum] = num;
    my_scratch[lane * kFscSums + kFscPow1] = p1;
    my_scratch[lane * kFscSums + kFscPow2] = p2;
    my_scratch[lane * kFscSums + kFscCount] = mult;
    __syncwarp();
    const unsigned peers = __match_any_sync(0xffffffffu, s);
    if (s >= 0 && lane == __ffs(peers) - 1) {
      double acc[kFscSums] = {0.0, 0.0, 0.0, 0.0};
      for (unsigned m = peers; m != 0u; m &= m - 1u) {
        const int l = __ffs(m) - 1;
#pragma unroll
        for (int c = 0; c < kFscSums; ++c) acc[c] += my_scratch[l * kFscSums + c];
      }
#pragma unroll
      for (int c = 0; c < kFscSums; ++c) my_hist[s * kFscSums + c] += acc[c];
    }
    __syncwarp();
  }
  __syncthreads();
  for (int j = threadIdx.x; j < row; j += blockDim.x) {
    double v = 0.0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += hist[w * row + j];
    partial[static_cast<index_t>(blockIdx.x) * row + j] = v;
  }
}

__global__ void fsc_reduce_kernel(const double* __restrict__ partial, int blocks, int row,
                                  double* __restrict__ sums) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= row) return;
  double v = 0.0;
  for (int b = 0; b < blocks; ++b) v += partial[static_cast<index_t>(b) * row + j];
  sums[j] = v;
}

// C: float2 / double2, the device view of std::complex<T> (same layout).
template <typename C, typename T>
void launch(const FscLaunch<T>& a) {
  const index_t nz = a.nz, ny = a.ny, nx = a.nx;
  const int n_shells = a.n_shells;
  if (nz <= 0 || ny <= 0 || nx <= 0 || n_shells <= 0)
    throw std::invalid_argument("fsc: sizes and `n_shells` must be positive");
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(a.stream);
  const index_t total = nz * ny * (nx / 2 + 1);
  const int row = n_shells * kFscSums;
  index_t want = (total + kThreads * 4 - 1) / (kThreads * 4);
  const int blocks = static_cast<int>(want < 1 ? 1 : (want > kMaxBlocks ? kMaxBlocks : want));
  const std::size_t smem = sizeof(double) * (static_cast<std::size_t>(kWarps) * row + kWarps * 32 * kFscSums);
  int device = 0, optin = 0;
  SPK_CUDA_CHECK(cudaGetDevice(&device));
  SPK_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (smem > static_cast<std::size_t>(optin))
    throw std::invalid_argument("fsc: " + std::to_string(n_shells) +
                                " shells need more shared memory than this GPU offers; use a wider `shell_width`");
  if (smem > 48 * 1024)
    SPK_CUDA_CHECK(cudaFuncSetAttribute(fsc_partial_kernel<C>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
  double* partial = nullptr;
  SPK_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial),
                                 sizeof(double) * static_cast<std::size_t>(blocks) * row, stream));
  fsc_partial_kernel<C><<<blocks, kThreads, smem, stream>>>(reinterpret_cast<const C*>(a.f1),
                                                            reinterpret_cast<const C*>(a.f2), nz, ny, nx, a.az,
                                                            a.ay, a.ax, n_shells, partial);
  SPK_CUDA_CHECK_LAUNCH();
  fsc_reduce_kernel<<<(row + 255) / 256, 256, 0, stream>>>(partial, blocks, row, a.sums);
  SPK_CUDA_CHECK_LAUNCH();
  SPK_CUDA_CHECK(cudaFreeAsync(partial, stream));
}

}  // namespace

void fsc_accumulate(const FscLaunch<float>& a) { launch<float2>(a); }
void fsc_accumulate(const FscLaunch<double>& a) { launch<double2>(a); }

}  // namespace spk::cuda
