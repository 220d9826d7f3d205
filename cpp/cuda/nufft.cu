// CUDA spreading, interpolation and binning of the 3-D NUFFT. The per-element math
// (fold, grid coordinate, support start, kernel weights, wrap, bin id) is spk/nufft.h, shared
// with the CPU path, so the CPU tests cover it.
//
// - setpts: bin id per point, CUB radix sort of (bin id, index) pairs (stable, so ties keep the
//   original order), bin offsets by binary search of the sorted ids. Deterministic.
// - interp: one thread per point in perm order (neighbouring threads read neighbouring cells),
//   weights in registers (width is a template parameter), w^3 complex FMAs per vector.
// - spread "gather": one block per (tile = bin, vector). Points of the bins that can reach the
//   tile are staged in chunks through shared memory: each staging thread tests whether its point's
//   support meets the tile, the survivors are compacted in their original order (ballot + prefix
//   counts) with their weights and value. Thread t owns the column (i1, i2) of the tile along
//   axis 3 and accumulates its cells in registers, visiting the staged points in order: no
//   atomics, and the same additions in the same order on every run.
// - spread "scatter": the baseline; one thread per point, atomicAdd into the zeroed grid.
#include <cub/device/device_radix_sort.cuh>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/nufft.h"
#include "spk/nufft.h"

namespace spk::cuda {
namespace {

using spk::index_t;
namespace m = spk::nufft;

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

template <typename T>
struct Cx;
template <>
struct Cx<float> {
  using type = float2;
};
template <>
struct Cx<double> {
  using type = double2;
};

constexpr int kThreads = 256;
constexpr int kStage = 64;  // points staged per round in the gather (two warps stage them)

unsigned blocks_for(std::int64_t n, int threads) {
  const std::int64_t b = (n + threads - 1) / threads;
  if (b > 0x7fffffff) throw std::invalid_argument("nufft: too many points for one launch; batch them");
  return static_cast<unsigned>(b);
}

// ---- setpts -------------------------------------------------------------------------------

template <typename T>
__global__ void bin_keys_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ z,
                                std::int64_t M, index_t n1, index_t n2, index_t n3, index_t bs1, index_t bs2,
                                index_t bs3, unsigned* __restrict__ keys, std::int64_t* __restrict__ idx) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= M) return;
  keys[i] = static_cast<unsigned>(m::bin_id(x[i], y[i], z[i], n1, n2, n3, bs1, bs2, bs3));
  idx[i] = i;
}

// offsets[b] = number of sorted keys < b (first index of bin b), b = 0 .. nbins.
__global__ void bin_offsets_kernel(const unsigned* __restrict__ sorted, std::int64_t M, std::int64_t nbins,
                                   std::int64_t* __restrict__ offsets) {
  const std::int64_t b = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (b > nbins) return;
  std::int64_t lo = 0, hi = M;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (static_cast<std::int64_t>(sorted[mid]) < b)
      lo = mid + 1;
    else
      hi = mid;
  }
  offsets[b] = lo;
}

template <typename T>
void setpts_t(const T* x, const T* y, const T* z, std::int64_t M, index_t n1, index_t n2, index_t n3,
              index_t bs1, index_t bs2, index_t bs3, std::int64_t* perm, std::int64_t* offsets,
              cudaStream_t st) {
  const std::int64_t nbins = ((n1 + bs1 - 1) / bs1) * ((n2 + bs2 - 1) / bs2) * ((n3 + bs3 - 1) / bs3);
  if (nbins >= (std::int64_t(1) << 31)) throw std::invalid_argument("nufft: too many bins; use larger `bin_size`");
  if (M == 0) {
    SPK_CUDA_CHECK(cudaMemsetAsync(offsets, 0, sizeof(std::int64_t) * (nbins + 1), st));
    return;
  }
  int end_bit = 1;
  while ((std::int64_t(1) << end_bit) < nbins) ++end_bit;
  unsigned *keys_in = nullptr, *keys_out = nullptr;
  std::int64_t* idx = nullptr;
  void* temp = nullptr;
  std::size_t temp_bytes = 0;
  SPK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, idx, perm, M, 0,
                                                 end_bit, st));
  SPK_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&keys_in), sizeof(unsigned) * M, st));
  SPK_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&keys_out), sizeof(unsigned) * M, st));
  SPK_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&idx), sizeof(std::int64_t) * M, st));
  SPK_CUDA_CHECK(cudaMallocAsync(&temp, temp_bytes, st));
  try {
    bin_keys_kernel<T><<<blocks_for(M, kThreads), kThreads, 0, st>>>(x, y, z, M, n1, n2, n3, bs1, bs2, bs3,
                                                                      keys_in, idx);
    SPK_CUDA_CHECK_LAUNCH();
    SPK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, idx, perm, M, 0,
                                                   end_bit, st));
    bin_offsets_kernel<<<blocks_for(nbins + 1, kThreads), kThreads, 0, st>>>(keys_out, M, nbins, offsets);
    SPK_CUDA_CHECK_LAUNCH();
  } catch (...) {
    cudaFreeAsync(keys_in, st);
    cudaFreeAsync(keys_out, st);
    cudaFreeAsync(idx, st);
    cudaFreeAsync(temp, st);
    throw;
  }
  SPK_CUDA_CHECK(cudaFreeAsync(keys_in, st));
  SPK_CUDA_CHECK(cudaFreeAsync(keys_out, st));
  SPK_CUDA_CHECK(cudaFreeAsync(idx, st));
  SPK_CUDA_CHECK(cudaFreeAsync(temp, st));
}

// ---- interp -------------------------------------------------------------------------------

template <typename T, int W>
__global__ void interp_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ z,
                              const typename Cx<T>::type* __restrict__ fine, std::int64_t V, std::int64_t M,
                              const std::int64_t* __restrict__ perm, index_t n1, index_t n2, index_t n3, T beta,
                              typename Cx<T>::type* __restrict__ c) {
  const std::int64_t s = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (s >= M) return;
  const std::int64_t p = perm[s];
  const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W), a3 = m::axis_point(z[p], n3, W);
  T w1[W], w2[W], w3[W];
  m::weights_direct(a1.u, W, beta, w1);
  m::weights_direct(a2.u, W, beta, w2);
  m::weights_direct(a3.u, W, beta, w3);
  const index_t N = n1 * n2 * n3;
  for (std::int64_t v = 0; v < V; ++v) {
    const typename Cx<T>::type* g = fine + v * N;
    T sr = 0, si = 0;
    index_t l1 = a1.l0;
#pragma unroll 1
    for (int j1 = 0; j1 < W; ++j1) {
      T ar = 0, ai = 0;
      index_t l2 = a2.l0;
#pragma unroll
      for (int j2 = 0; j2 < W; ++j2) {
        const typename Cx<T>::type* row = g + (l1 * n2 + l2) * n3;
        T rr = 0, ri = 0;
        index_t l3 = a3.l0;
#pragma unroll
        for (int j3 = 0; j3 < W; ++j3) {
          const auto q = row[l3];
          rr += w3[j3] * q.x;
          ri += w3[j3] * q.y;
          l3 = l3 + 1 == n3 ? 0 : l3 + 1;
        }
        ar += w2[j2] * rr;
        ai += w2[j2] * ri;
        l2 = l2 + 1 == n2 ? 0 : l2 + 1;
      }
      sr += w1[j1] * ar;
      si += w1[j1] * ai;
      l1 = l1 + 1 == n1 ? 0 : l1 + 1;
    }
    typename Cx<T>::type out;
    out.x = sr;
    out.y = si;
    c[v * M + p] = out;
  }
}

// ---- spread: scatter baseline ---------------------------------------------------------------

template <typename T, int W>
__global__ void scatter_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ z,
                               const typename Cx<T>::type* __restrict__ c, std::int64_t V, std::int64_t M,
                               const std::int64_t* __restrict__ perm, index_t n1, index_t n2, index_t n3, T beta,
                               T* __restrict__ fine) {
  const std::int64_t s = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (s >= M) return;
  const std::int64_t p = perm[s];
  const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W), a3 = m::axis_point(z[p], n3, W);
  T w1[W], w2[W], w3[W];
  m::weights_direct(a1.u, W, beta, w1);
  m::weights_direct(a2.u, W, beta, w2);
  m::weights_direct(a3.u, W, beta, w3);
  const index_t N = n1 * n2 * n3;
  for (std::int64_t v = 0; v < V; ++v) {
    const auto cv = c[v * M + p];
    T* g = fine + 2 * v * N;
    index_t l1 = a1.l0;
#pragma unroll 1
    for (int j1 = 0; j1 < W; ++j1) {
      index_t l2 = a2.l0;
#pragma unroll
      for (int j2 = 0; j2 < W; ++j2) {
        const T f = w1[j1] * w2[j2];
        const T fr = f * cv.x, fi = f * cv.y;
        T* row = g + 2 * ((l1 * n2 + l2) * n3);
        index_t l3 = a3.l0;
#pragma unroll
        for (int j3 = 0; j3 < W; ++j3) {
          atomicAdd(row + 2 * l3, fr * w3[j3]);
          atomicAdd(row + 2 * l3 + 1, fi * w3[j3]);
          l3 = l3 + 1 == n3 ? 0 : l3 + 1;
        }
        l2 = l2 + 1 == n2 ? 0 : l2 + 1;
      }
      l1 = l1 + 1 == n1 ? 0 : l1 + 1;
    }
  }
}

// ---- spread: output-driven gather -----------------------------------------------------------

// Bins along one axis whose points can reach the tile [a, a + len) (see the CPU version:
// cells [a - ceil(w/2) - 1, a + len + floor(w/2)], cyclically), ascending, no repeats.
__device__ int reach_bins(index_t a, index_t len, index_t n, index_t bs, int w, int* out, int cap) {
  const index_t nb = (n + bs - 1) / bs;
  const index_t lo = a - (w + 1) / 2 - 1, hi = a + len - 1 + w / 2 + 1;
  int k = 0;
  for (index_t b = 0; b < nb && k < cap; ++b) {
    const index_t c0 = b * bs, c1 = min(n, c0 + bs) - 1;
    bool hit = hi - lo + 1 >= n;
    for (index_t sh = -n; sh <= n && !hit; sh += n) hit = c0 <= hi + sh && c1 >= lo + sh;
    if (hit) out[k++] = static_cast<int>(b);
  }
  return k;
}

constexpr int kGatherZ = 16;   // tile cells per thread along axis 3 (registers)
constexpr int kReachCap = 64;  // bins per axis reaching one tile; more only if bins are < w/2 wide

template <typename T, int BZ>
__global__ void gather_kernel(int W, const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ z,
                              const typename Cx<T>::type* __restrict__ c, std::int64_t V, std::int64_t M,
                              const std::int64_t* __restrict__ perm, const std::int64_t* __restrict__ offsets,
                              index_t n1, index_t n2, index_t n3, index_t bs1, index_t bs2, index_t bs3, T beta,
                              typename Cx<T>::type* __restrict__ fine) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sw1 = reinterpret_cast<T*>(smem_raw);  // [kStage][W] each
  T* sw2 = sw1 + kStage * W;
  T* sw3 = sw2 + kStage * W;
  T* scr = sw3 + kStage * W;
  T* sci = scr + kStage;
  int* so = reinterpret_cast<int*>(sci + kStage);  // [kStage][3]
  __shared__ int reach[3][kReachCap];
  __shared__ int nreach[3];
  __shared__ int warp_count[kStage / 32];

  const index_t nb2 = (n2 + bs2 - 1) / bs2, nb3 = (n3 + bs3 - 1) / bs3;
  const index_t tile = blockIdx.x;
  const index_t b1 = tile / (nb2 * nb3), b2 = (tile / nb3) % nb2, b3 = tile % nb3;
  const index_t A1 = b1 * bs1, A2 = b2 * bs2, A3 = b3 * bs3;
  const index_t L1 = min(bs1, n1 - A1), L2 = min(bs2, n2 - A2), L3 = min(bs3, n3 - A3);
  const int tid = threadIdx.x;
  if (tid < 3) {
    const index_t a = tid == 0 ? A1 : tid == 1 ? A2 : A3;
    const index_t len = tid == 0 ? L1 : tid == 1 ? L2 : L3;
    const index_t n = tid == 0 ? n1 : tid == 1 ? n2 : n3;
    const index_t bs = tid == 0 ? bs1 : tid == 1 ? bs2 : bs3;
    nreach[tid] = reach_bins(a, len, n, bs, W, reach[tid], kReachCap);
  }
  __syncthreads();

  // This thread's column of the tile.
  const index_t i1 = tid / bs2, i2 = tid % bs2;
  const bool owns = i1 < L1 && i2 < L2;
  const index_t N = n1 * n2 * n3;

  for (std::int64_t v = blockIdx.y; v < V; v += gridDim.y) {
    T accr[BZ], acci[BZ];
#pragma unroll
    for (int k = 0; k < BZ; ++k) accr[k] = acci[k] = T(0);

    for (int r1 = 0; r1 < nreach[0]; ++r1)
      for (int r2 = 0; r2 < nreach[1]; ++r2)
        for (int r3 = 0; r3 < nreach[2]; ++r3) {
          const index_t bin = (static_cast<index_t>(reach[0][r1]) * nb2 + reach[1][r2]) * nb3 + reach[2][r3];
          const std::int64_t s0 = offsets[bin], s1 = offsets[bin + 1];
          for (std::int64_t base = s0; base < s1; base += kStage) {
            // Stage: test, compact in order, store weights and value.
            if (tid < kStage) {
              const std::int64_t s = base + tid;
              bool meets = false;
              index_t o1 = 0, o2 = 0, o3 = 0;
              m::AxisPoint<T> a1{}, a2{}, a3{};
              std::int64_t p = 0;
              if (s < s1) {
                p = perm[s];
                a1 = m::axis_point(x[p], n1, W);
                a2 = m::axis_point(y[p], n2, W);
                a3 = m::axis_point(z[p], n3, W);
                o1 = a1.l0 - A1;
                o2 = a2.l0 - A2;
                o3 = a3.l0 - A3;
                if (o1 < 0) o1 += n1;
                if (o2 < 0) o2 += n2;
                if (o3 < 0) o3 += n3;
                meets = m::support_meets_tile(o1, L1, n1, W) && m::support_meets_tile(o2, L2, n2, W) &&
                        m::support_meets_tile(o3, L3, n3, W);
              }
              const unsigned mask = __ballot_sync(0xffffffffu, meets);
              const int lane = tid & 31, warp = tid >> 5;
              if (lane == 0) warp_count[warp] = __popc(mask);
              // Both staging warps must publish their counts before either uses them; a named
              // barrier over the kStage staging threads only.
              asm volatile("bar.sync 1, %0;" ::"n"(kStage) : "memory");
              int pos = __popc(mask & ((1u << lane) - 1u));
              for (int q = 0; q < warp; ++q) pos += warp_count[q];
              if (meets) {
                T* d1 = sw1 + pos * W;
                T* d2 = sw2 + pos * W;
                T* d3 = sw3 + pos * W;
                m::weights_direct(a1.u, W, beta, d1);
                m::weights_direct(a2.u, W, beta, d2);
                m::weights_direct(a3.u, W, beta, d3);
                const auto cv = c[v * M + p];
                scr[pos] = cv.x;
                sci[pos] = cv.y;
                so[3 * pos] = static_cast<int>(o1);
                so[3 * pos + 1] = static_cast<int>(o2);
                so[3 * pos + 2] = static_cast<int>(o3);
              }
            }
            __syncthreads();
            int nstaged = 0;
#pragma unroll
            for (int q = 0; q < kStage / 32; ++q) nstaged += warp_count[q];
            if (owns) {
              for (int q = 0; q < nstaged; ++q) {
                const index_t j1 = m::support_offset(i1, so[3 * q], n1);
                const index_t j2 = m::support_offset(i2, so[3 * q + 1], n2);
                if (j1 >= W || j2 >= W) continue;
                const T f = sw1[q * W + j1] * sw2[q * W + j2];
                const T fr = f * scr[q], fi = f * sci[q];
                const index_t o3 = so[3 * q + 2];
                const T* w3 = sw3 + q * W;
#pragma unroll
                for (int k = 0; k < BZ; ++k) {
                  const index_t j3 = m::support_offset(k, o3, n3);
                  if (k < L3 && j3 < W) {
                    accr[k] += fr * w3[j3];
                    acci[k] += fi * w3[j3];
                  }
                }
              }
            }
            __syncthreads();
          }
        }
    if (owns) {
      typename Cx<T>::type* out = fine + v * N + ((A1 + i1) * n2 + (A2 + i2)) * n3 + A3;
#pragma unroll
      for (int k = 0; k < BZ; ++k)
        if (k < L3) {
          typename Cx<T>::type o;
          o.x = accr[k];
          o.y = acci[k];
          out[k] = o;
        }
    }
  }
}

// ---- width dispatch -----------------------------------------------------------------------

template <typename T, int W>
void spread_w(const T* x, const T* y, const T* z, const typename Cx<T>::type* c, std::int64_t V, std::int64_t M,
              const std::int64_t* perm, const std::int64_t* offsets, index_t n1, index_t n2, index_t n3,
              index_t bs1, index_t bs2, index_t bs3, T beta, bool gather, typename Cx<T>::type* fine,
              cudaStream_t st) {
  if (!gather) {
    SPK_CUDA_CHECK(cudaMemsetAsync(fine, 0, sizeof(typename Cx<T>::type) * V * n1 * n2 * n3, st));
    if (M == 0) return;
    scatter_kernel<T, W><<<blocks_for(M, kThreads), kThreads, 0, st>>>(x, y, z, c, V, M, perm, n1, n2, n3, beta,
                                                                        reinterpret_cast<T*>(fine));
    SPK_CUDA_CHECK_LAUNCH();
    return;
  }
  if (bs1 * bs2 > 1024 || bs3 > kGatherZ)
    throw std::invalid_argument("nufft gather on the GPU needs `bin_size` with bs1 * bs2 <= 1024 and bs3 <= 16");
  const index_t ntiles = ((n1 + bs1 - 1) / bs1) * ((n2 + bs2 - 1) / bs2) * ((n3 + bs3 - 1) / bs3);
  if (ntiles > 0x7fffffff) throw std::invalid_argument("nufft: too many tiles; use larger `bin_size`");
  int threads = static_cast<int>((bs1 * bs2 + 31) / 32 * 32);
  if (threads < kStage) threads = kStage;
  const std::size_t smem = sizeof(T) * (3 * kStage * W + 2 * kStage) + sizeof(int) * 3 * kStage;
  const dim3 grid(static_cast<unsigned>(ntiles), static_cast<unsigned>(V < 65535 ? V : 65535));
  gather_kernel<T, kGatherZ><<<grid, threads, smem, st>>>(W, x, y, z, c, V, M, perm, offsets, n1, n2, n3, bs1,
                                                         bs2, bs3, beta, fine);
  SPK_CUDA_CHECK_LAUNCH();
}

template <typename T, int W>
void interp_w(const T* x, const T* y, const T* z, const typename Cx<T>::type* fine, std::int64_t V,
              std::int64_t M, const std::int64_t* perm, index_t n1, index_t n2, index_t n3, T beta,
              typename Cx<T>::type* c, cudaStream_t st) {
  if (M == 0) return;
  interp_kernel<T, W><<<blocks_for(M, kThreads), kThreads, 0, st>>>(x, y, z, fine, V, M, perm, n1, n2, n3, beta, c);
  SPK_CUDA_CHECK_LAUNCH();
}

#define SPK_NUFFT_WIDTHS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)

template <typename T>
void spread_t(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t c, std::int64_t V,
              std::int64_t M, std::uintptr_t perm, std::uintptr_t offsets, index_t n1, index_t n2, index_t n3,
              index_t bs1, index_t bs2, index_t bs3, int w, double beta, bool gather, std::uintptr_t fine,
              cudaStream_t st) {
  using C = typename Cx<T>::type;
  const auto* px = reinterpret_cast<const T*>(x);
  const auto* py = reinterpret_cast<const T*>(y);
  const auto* pz = reinterpret_cast<const T*>(z);
  const auto* pc = reinterpret_cast<const C*>(c);
  const auto* pp = reinterpret_cast<const std::int64_t*>(perm);
  const auto* po = reinterpret_cast<const std::int64_t*>(offsets);
  auto* pf = reinterpret_cast<C*>(fine);
  switch (w) {
#define SPK_CASE(k)                                                                                           \
  case k:                                                                                                     \
    return spread_w<T, k>(px, py, pz, pc, V, M, pp, po, n1, n2, n3, bs1, bs2, bs3, static_cast<T>(beta), gather, \
                          pf, st);
    SPK_NUFFT_WIDTHS(SPK_CASE)
#undef SPK_CASE
    default:
      throw std::invalid_argument("`w` must be in [2, 16], got " + std::to_string(w));
  }
}

template <typename T>
void interp_t(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t fine, std::int64_t V,
              std::int64_t M, std::uintptr_t perm, index_t n1, index_t n2, index_t n3, int w, double beta,
              std::uintptr_t c, cudaStream_t st) {
  using C = typename Cx<T>::type;
  const auto* px = reinterpret_cast<const T*>(x);
  const auto* py = reinterpret_cast<const T*>(y);
  const auto* pz = reinterpret_cast<const T*>(z);
  const auto* pf = reinterpret_cast<const C*>(fine);
  const auto* pp = reinterpret_cast<const std::int64_t*>(perm);
  auto* pc = reinterpret_cast<C*>(c);
  switch (w) {
#define SPK_CASE(k) \
  case k:           \
    return interp_w<T, k>(px, py, pz, pf, V, M, pp, n1, n2, n3, static_cast<T>(beta), pc, st);
    SPK_NUFFT_WIDTHS(SPK_CASE)
#undef SPK_CASE
    default:
      throw std::invalid_argument("`w` must be in [2, 16], got " + std::to_string(w));
  }
}

void check_common(std::int64_t V, std::int64_t M, int prec) {
  if (prec != 4 && prec != 8) throw std::invalid_argument("`dtype` must be 'f32' or 'f64'");
  if (M < 0) throw std::invalid_argument("`M` must be >= 0");
  if (V < 1) throw std::invalid_argument("`V` must be >= 1");
}

void check_ptr(std::uintptr_t p, const char* name) {
  if (p == 0) throw std::invalid_argument(std::string("`") + name + "` is a null pointer");
}

}  // namespace

void nufft_setpts(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::int64_t M, std::int64_t n1,
                  std::int64_t n2, std::int64_t n3, std::int64_t bs1, std::int64_t bs2, std::int64_t bs3,
                  int prec, std::uintptr_t perm, std::uintptr_t bin_offsets, std::uintptr_t stream) {
  check_common(1, M, prec);
  check_ptr(bin_offsets, "bin_offsets_ptr");
  if (M > 0) {
    check_ptr(x, "x_ptr");
    check_ptr(y, "y_ptr");
    check_ptr(z, "z_ptr");
    check_ptr(perm, "perm_ptr");
  }
  auto* pp = reinterpret_cast<std::int64_t*>(perm);
  auto* po = reinterpret_cast<std::int64_t*>(bin_offsets);
  if (prec == 4)
    setpts_t(reinterpret_cast<const float*>(x), reinterpret_cast<const float*>(y), reinterpret_cast<const float*>(z),
             M, n1, n2, n3, bs1, bs2, bs3, pp, po, as_stream(stream));
  else
    setpts_t(reinterpret_cast<const double*>(x), reinterpret_cast<const double*>(y),
             reinterpret_cast<const double*>(z), M, n1, n2, n3, bs1, bs2, bs3, pp, po, as_stream(stream));
}

void nufft_spread(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t c, std::int64_t V,
                  std::int64_t M, std::uintptr_t perm, std::uintptr_t bin_offsets, std::int64_t n1,
                  std::int64_t n2, std::int64_t n3, std::int64_t bs1, std::int64_t bs2, std::int64_t bs3,
                  int w, double beta, int prec, bool gather, std::uintptr_t fine, std::uintptr_t stream) {
  check_common(V, M, prec);
  check_ptr(fine, "fine_ptr");
  check_ptr(bin_offsets, "bin_offsets_ptr");
  if (M > 0) {
    check_ptr(x, "x_ptr");
    check_ptr(y, "y_ptr");
    check_ptr(z, "z_ptr");
    check_ptr(c, "c_ptr");
    check_ptr(perm, "perm_ptr");
  }
  if (prec == 4)
    spread_t<float>(x, y, z, c, V, M, perm, bin_offsets, n1, n2, n3, bs1, bs2, bs3, w, beta, gather, fine,
                    as_stream(stream));
  else
    spread_t<double>(x, y, z, c, V, M, perm, bin_offsets, n1, n2, n3, bs1, bs2, bs3, w, beta, gather, fine,
                     as_stream(stream));
}

void nufft_interp(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t fine, std::int64_t V,
                  std::int64_t M, std::uintptr_t perm, std::int64_t n1, std::int64_t n2, std::int64_t n3,
                  int w, double beta, int prec, std::uintptr_t c, std::uintptr_t stream) {
  check_common(V, M, prec);
  if (M > 0) {
    check_ptr(x, "x_ptr");
    check_ptr(y, "y_ptr");
    check_ptr(z, "z_ptr");
    check_ptr(fine, "fine_ptr");
    check_ptr(perm, "perm_ptr");
    check_ptr(c, "c_ptr");
  }
  if (prec == 4)
    interp_t<float>(x, y, z, fine, V, M, perm, n1, n2, n3, w, beta, c, as_stream(stream));
  else
    interp_t<double>(x, y, z, fine, V, M, perm, n1, n2, n3, w, beta, c, as_stream(stream));
}

}  // namespace spk::cuda
