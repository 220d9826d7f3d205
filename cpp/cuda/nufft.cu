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
// - weights: the ES kernel (beta > 0) is evaluated directly (exp and sqrt are cheap here); the
//   PSWF (beta < 0) from the CPU path's Horner table (spk/nufft_horner.h), fitted once per
//   (w, beta) on the host and copied to the device for each launch: evaluating the PSWF directly
//   is an eigenvalue solve and w + 1 Legendre series per axis and point.
#include <cub/device/device_radix_sort.cuh>

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/check.cuh"
#include "cuda/nufft.h"
#include "spk/nufft.h"
#include "spk/nufft_horner.h"

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

// ---- kernel weights -------------------------------------------------------------------------

// What a kernel needs to evaluate one axis's weights: the PSWF's Horner table (device memory,
// stride_for(w) columns, deg + 1 rows) or, when coef is null, the ES shape beta.
template <typename T>
struct KernelWeights {
  T beta = 0;
  const T* coef = nullptr;
  int deg = 0;
};

// The W weights of support offset u into out[0, S), S = stride_for(W) >= W.
template <typename T, int S>
__device__ __forceinline__ void axis_weights(const KernelWeights<T>& k, T u, int W, T* out) {
  if (k.coef != nullptr)
    m::weights_horner<T, S>(u, W, k.deg, k.coef, out);
  else
    m::weights_direct(u, W, k.beta, out);
}

// The host fit of (w, beta), made once per process and kept (a few KB per kernel shape).
template <typename T>
const m::Horner<T>& cached_horner(int w, double beta) {
  static std::mutex mu;
  static std::map<std::pair<int, double>, m::Horner<T>> fits;
  std::lock_guard<std::mutex> lock(mu);
  auto it = fits.find({w, beta});
  if (it == fits.end()) it = fits.emplace(std::make_pair(w, beta), m::make_horner<T>(w, beta)).first;
  return it->second;
}

// The launch's KernelWeights; for the PSWF the table is copied into a stream-ordered allocation
// freed, stream-ordered too, when this goes out of scope after the launches.
template <typename T>
class LaunchWeights {
 public:
  LaunchWeights(int w, double beta, cudaStream_t st) : st_(st) {
    kw.beta = static_cast<T>(beta);
    if (beta < 0) {
      const m::Horner<T>& h = cached_horner<T>(w, beta);
      const std::size_t bytes = sizeof(T) * h.coef.size();
      SPK_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&dev_), bytes, st));
      SPK_CUDA_CHECK(cudaMemcpyAsync(dev_, h.coef.data(), bytes, cudaMemcpyHostToDevice, st));
      kw.coef = dev_;
      kw.deg = h.deg;
    }
  }
  ~LaunchWeights() {
    if (dev_) cudaFreeAsync(dev_, st_);
  }
  LaunchWeights(const LaunchWeights&) = delete;
  LaunchWeights& operator=(const LaunchWeights&) = delete;
  KernelWeights<T> kw;

 private:
  cudaStream_t st_;
  T* dev_ = nullptr;
};

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
                              const std::int64_t* __restrict__ perm, index_t n1, index_t n2, index_t n3,
                              KernelWeights<T> kw, typename Cx<T>::type* __restrict__ c) {
  const std::int64_t s = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (s >= M) return;
  const std::int64_t p = perm[s];
  const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W), a3 = m::axis_point(z[p], n3, W);
  constexpr int S = m::stride_for(W);
  T w1[S], w2[S], w3[S];
  axis_weights<T, S>(kw, a1.u, W, w1);
  axis_weights<T, S>(kw, a2.u, W, w2);
  axis_weights<T, S>(kw, a3.u, W, w3);
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
                               const std::int64_t* __restrict__ perm, index_t n1, index_t n2, index_t n3,
                               KernelWeights<T> kw, T* __restrict__ fine) {
  const std::int64_t s = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (s >= M) return;
  const std::int64_t p = perm[s];
  const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W), a3 = m::axis_point(z[p], n3, W);
  constexpr int S = m::stride_for(W);
  T w1[S], w2[S], w3[S];
  axis_weights<T, S>(kw, a1.u, W, w1);
  axis_weights<T, S>(kw, a2.u, W, w2);
  axis_weights<T, S>(kw, a3.u, W, w3);
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

// S = stride_for(W): the register scratch of one axis's weights before they are staged.
template <typename T, int BZ, int S>
__global__ void gather_kernel(int W, const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ z,
                              const typename Cx<T>::type* __restrict__ c, std::int64_t V, std::int64_t M,
                              const std::int64_t* __restrict__ perm, const std::int64_t* __restrict__ offsets,
                              index_t n1, index_t n2, index_t n3, index_t bs1, index_t bs2, index_t bs3,
                              KernelWeights<T> kw, typename Cx<T>::type* __restrict__ fine) {
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
#if defined(SPK_HOST_EXEC)
              spk_host_named_barrier(1, kStage);  // tests: cpp/testing executes this on the CPU
#else
              asm volatile("bar.sync 1, %0;" ::"n"(kStage) : "memory");
#endif
              int pos = __popc(mask & ((1u << lane) - 1u));
              for (int q = 0; q < warp; ++q) pos += warp_count[q];
              if (meets) {
                T t[S];
                axis_weights<T, S>(kw, a1.u, W, t);
                for (int j = 0; j < W; ++j) sw1[pos * W + j] = t[j];
                axis_weights<T, S>(kw, a2.u, W, t);
                for (int j = 0; j < W; ++j) sw2[pos * W + j] = t[j];
                axis_weights<T, S>(kw, a3.u, W, t);
                for (int j = 0; j < W; ++j) sw3[pos * W + j] = t[j];
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
              index_t bs1, index_t bs2, index_t bs3, double beta, bool gather, typename Cx<T>::type* fine,
              cudaStream_t st) {
  if (!gather) {
    SPK_CUDA_CHECK(cudaMemsetAsync(fine, 0, sizeof(typename Cx<T>::type) * V * n1 * n2 * n3, st));
    if (M == 0) return;
    const LaunchWeights<T> lw(W, beta, st);
    scatter_kernel<T, W><<<blocks_for(M, kThreads), kThreads, 0, st>>>(x, y, z, c, V, M, perm, n1, n2, n3, lw.kw,
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
  const LaunchWeights<T> lw(W, beta, st);
  gather_kernel<T, kGatherZ, m::stride_for(W)><<<grid, threads, smem, st>>>(W, x, y, z, c, V, M, perm, offsets, n1,
                                                                           n2, n3, bs1, bs2, bs3, lw.kw, fine);
  SPK_CUDA_CHECK_LAUNCH();
}

template <typename T, int W>
void interp_w(const T* x, const T* y, const T* z, const typename Cx<T>::type* fine, std::int64_t V,
              std::int64_t M, const std::int64_t* perm, index_t n1, index_t n2, index_t n3, double beta,
              typename Cx<T>::type* c, cudaStream_t st) {
  if (M == 0) return;
  const LaunchWeights<T> lw(W, beta, st);
  interp_kernel<T, W><<<blocks_for(M, kThreads), kThreads, 0, st>>>(x, y, z, fine, V, M, perm, n1, n2, n3, lw.kw, c);
  SPK_CUDA_CHECK_LAUNCH();
}

#define SPK_NUFFT_WIDTHS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)

void check_common(std::int64_t V, std::int64_t M) {
  if (M < 0) throw std::invalid_argument("`M` must be >= 0");
  if (V < 1) throw std::invalid_argument("`V` must be >= 1");
}

void check_ptr(const void* p, const char* name) {
  if (p == nullptr) throw std::invalid_argument(std::string("`") + name + "` is a null pointer");
}

// The checks spreading and interpolation share: sizes, and the points when there are any.
template <typename T>
void check_kernel_args(const NufftKernelArgs<T>& a) {
  check_common(a.V, a.M);
  if (a.M > 0) {
    check_ptr(a.x, "x_ptr");
    check_ptr(a.y, "y_ptr");
    check_ptr(a.z, "z_ptr");
    check_ptr(a.perm, "perm_ptr");
  }
}

template <typename T>
void spread_t(const NufftSpreadLaunch<T>& a) {
  using C = typename Cx<T>::type;  // the device view of std::complex<T> (same layout)
  check_kernel_args(a);
  check_ptr(a.fine, "fine_ptr");
  check_ptr(a.bin_offsets, "bin_offsets_ptr");
  if (a.M > 0) check_ptr(a.c, "c_ptr");
  const auto* pc = reinterpret_cast<const C*>(a.c);
  auto* pf = reinterpret_cast<C*>(a.fine);
  cudaStream_t st = as_stream(a.stream);
  switch (a.w) {
#define SPK_CASE(k)                                                                                                 \
  case k:                                                                                                           \
    return spread_w<T, k>(a.x, a.y, a.z, pc, a.V, a.M, a.perm, a.bin_offsets, a.n1, a.n2, a.n3, a.bs1, a.bs2, a.bs3, \
                          a.beta, a.gather, pf, st);
    SPK_NUFFT_WIDTHS(SPK_CASE)
#undef SPK_CASE
    default:
      throw std::invalid_argument("`w` must be in [2, 16], got " + std::to_string(a.w));
  }
}

template <typename T>
void interp_t(const NufftInterpLaunch<T>& a) {
  using C = typename Cx<T>::type;
  check_kernel_args(a);
  if (a.M > 0) {
    check_ptr(a.fine, "fine_ptr");
    check_ptr(a.c, "c_ptr");
  }
  const auto* pf = reinterpret_cast<const C*>(a.fine);
  auto* pc = reinterpret_cast<C*>(a.c);
  cudaStream_t st = as_stream(a.stream);
  switch (a.w) {
#define SPK_CASE(k) \
  case k:           \
    return interp_w<T, k>(a.x, a.y, a.z, pf, a.V, a.M, a.perm, a.n1, a.n2, a.n3, a.beta, pc, st);
    SPK_NUFFT_WIDTHS(SPK_CASE)
#undef SPK_CASE
    default:
      throw std::invalid_argument("`w` must be in [2, 16], got " + std::to_string(a.w));
  }
}

template <typename T>
void setpts_checked(const NufftSetptsLaunch<T>& a) {
  check_common(1, a.M);
  check_ptr(a.bin_offsets, "bin_offsets_ptr");
  if (a.M > 0) {
    check_ptr(a.x, "x_ptr");
    check_ptr(a.y, "y_ptr");
    check_ptr(a.z, "z_ptr");
    check_ptr(a.perm, "perm_ptr");
  }
  setpts_t(a.x, a.y, a.z, a.M, a.n1, a.n2, a.n3, a.bs1, a.bs2, a.bs3, a.perm, a.bin_offsets, as_stream(a.stream));
}

}  // namespace

void nufft_setpts(const NufftSetptsLaunch<float>& a) { setpts_checked(a); }
void nufft_setpts(const NufftSetptsLaunch<double>& a) { setpts_checked(a); }
void nufft_spread(const NufftSpreadLaunch<float>& a) { spread_t(a); }
void nufft_spread(const NufftSpreadLaunch<double>& a) { spread_t(a); }
void nufft_interp(const NufftInterpLaunch<float>& a) { interp_t(a); }
void nufft_interp(const NufftInterpLaunch<double>& a) { interp_t(a); }

}  // namespace spk::cuda
