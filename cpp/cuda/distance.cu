// CUDA distance kernels: a tiled GEMM (tensor cores through WMMA, or FFMA) whose tile loader
// applies the pixel weights and the metric's transform, and whose epilogue adds the row terms
// and keeps each data column's k best models, so the R x N score matrix never exists.
//
// Layout of the work: a block owns BN data columns and walks the model tiles
// split, split + S, split + 2S, ... (S <= 64 splits of R, chosen to fill the GPU). Each block
// keeps its columns' running top-k lists in a partial buffer (S, N, k); a second kernel merges
// the S sorted lists per column. The order (score, index) is total, so the result does not
// depend on S or on scheduling: deterministic, lowest index on ties.
//
// The kernels are deliberately plain (single-buffered shared-memory tiles, one barrier pair
// per K step): correctness first; the per-element math is the header shared with the CPU path.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/distance.h"
#include "spk/distance.h"

namespace spk::cuda {

namespace {

using spk::index_t;
namespace sd = spk::distance;
namespace wmma = nvcuda::wmma;

enum class Prec { kFp32, k3xTf32, kTf32, kBf16, kFp16 };

Prec parse_precision(const std::string& s) {
  if (s == "fp32") return Prec::kFp32;
  if (s == "3xtf32") return Prec::k3xTf32;
  if (s == "tf32") return Prec::kTf32;
  if (s == "bf16") return Prec::kBf16;
  if (s == "fp16") return Prec::kFp16;
  throw std::invalid_argument("`precision` must be one of fp32, 3xtf32, tf32, bf16, fp16 on the cuda backend, got '" +
                              s + "'");
}

constexpr int BM = 64;   // models per tile
constexpr int BN = 64;   // data columns per tile
constexpr int BK = 32;   // pixels per K step
constexpr int kThreads = 128;
constexpr int kMaxSplits = 64;
static_assert(BM == BN, "the tile loader fills both tiles in one loop");
static_assert(BM * BK % kThreads == 0, "every thread stages the same number of elements");

// Shared-memory element type per precision; rows padded (WMMA wants ldm a multiple of 16 bytes,
// the padding also spreads the rows over the banks).
template <Prec PR>
struct Storage {
  using type = float;
  static constexpr int ldk = BK + 4;
};
template <>
struct Storage<Prec::kBf16> {
  using type = __nv_bfloat16;
  static constexpr int ldk = BK + 8;
};
template <>
struct Storage<Prec::kFp16> {
  using type = __half;
  static constexpr int ldk = BK + 8;
};

__device__ __forceinline__ void to_storage(float v, float* dst) { *dst = v; }
__device__ __forceinline__ void to_storage(float v, __half* dst) { *dst = __float2half_rn(v); }
__device__ __forceinline__ void to_storage(float v, __nv_bfloat16* dst) { *dst = __float2bfloat16_rn(v); }

template <Prec PR>
struct Tiles {
  using S = typename Storage<PR>::type;
  static constexpr int LDK = Storage<PR>::ldk;
  static constexpr int LDC = BN + 4;
  alignas(128) S a[BM * LDK];      // models [BM][BK]: w_p f(x)
  alignas(128) S b[BN * LDK];      // data [BN][BK]
  alignas(128) float c[BM * LDC];  // dot products of the current model tile [BM][BN]
};

struct Args {
  const float* models;
  const float* data;
  const float* weights;  // nullptr: all ones
  const float* row_a;    // (R,) a_r
  const float* row_b;    // (N,) b_n
  index_t R, N, P;
  int metric, k, splits;
  float* part_score;     // top-k: (splits, N, k)
  index_t* part_index;
  float* out;            // pairwise: (R, N)
};

// Tiles go through registers: the next K step's global loads are issued before the current
// step's math, so their latency overlaps it (a register double buffer).
constexpr int kPerThread = BM * BK / kThreads;
struct Staged {
  float a[kPerThread];
  float b[kPerThread];
};

__device__ __forceinline__ void fetch_tiles(Staged& st, const Args& g, index_t r0, index_t n0, index_t k0) {
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    const int e = threadIdx.x + q * kThreads;
    const int row = e / BK, col = e % BK;  // consecutive threads read consecutive pixels
    const index_t p = k0 + col;
    float va = 0.f, vb = 0.f;
    if (p < g.P) {
      const index_t r = r0 + row, n = n0 + row;
      if (r < g.R) va = sd::model_factor(g.models[r * g.P + p], g.weights ? g.weights[p] : 1.f, g.metric);
      if (n < g.N) vb = g.data[n * g.P + p];
    }
    st.a[q] = va;
    st.b[q] = vb;
  }
}

template <Prec PR>
__device__ __forceinline__ void store_tiles(Tiles<PR>& t, const Staged& st) {
  constexpr int LDK = Tiles<PR>::LDK;
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    const int e = threadIdx.x + q * kThreads;
    const int row = e / BK, col = e % BK;
    to_storage(st.a[q], &t.a[row * LDK + col]);
    to_storage(st.b[q], &t.b[row * LDK + col]);
  }
}

// FFMA path: thread (tx, ty) owns rows ty + 8i and columns tx + 16j of the 64 x 64 tile.
struct SimtAcc {
  float v[8][4];
};

__device__ __forceinline__ void simt_zero(SimtAcc& acc) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc.v[i][j] = 0.f;
}

__device__ __forceinline__ void simt_step(SimtAcc& acc, const Tiles<Prec::kFp32>& t) {
  constexpr int LDK = Tiles<Prec::kFp32>::LDK;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 4
  for (int kk = 0; kk < BK; ++kk) {
    float av[8], bv[4];
#pragma unroll
    for (int i = 0; i < 8; ++i) av[i] = t.a[(ty + 8 * i) * LDK + kk];
#pragma unroll
    for (int j = 0; j < 4; ++j) bv[j] = t.b[(tx + 16 * j) * LDK + kk];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc.v[i][j] = fmaf(av[i], bv[j], acc.v[i][j]);
  }
}

__device__ __forceinline__ void simt_store(const SimtAcc& acc, Tiles<Prec::kFp32>& t) {
  constexpr int LDC = Tiles<Prec::kFp32>::LDC;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) t.c[(ty + 8 * i) * LDC + tx + 16 * j] = acc.v[i][j];
}

// Tensor-core path: 4 warps in 2 x 2, each owning a 32 x 32 block as 2 x 2 fragments 16 x 16.
template <Prec PR>
struct MmaShape {
  static constexpr int K = 8;  // tf32
  using AType = wmma::precision::tf32;
};
template <>
struct MmaShape<Prec::kBf16> {
  static constexpr int K = 16;
  using AType = __nv_bfloat16;
};
template <>
struct MmaShape<Prec::kFp16> {
  static constexpr int K = 16;
  using AType = __half;
};

template <Prec PR>
struct WmmaAcc {
  wmma::fragment<wmma::accumulator, 16, 16, MmaShape<PR>::K, float> f[2][2];
};

template <Prec PR>
__device__ __forceinline__ void wmma_zero(WmmaAcc<PR>& acc) {
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc.f[i][j], 0.f);
}

// Round a tf32 fragment in place and return the rounding residual (also rounded to tf32):
// x ~ hi + lo with both exactly representable, so a*b ~ ah*bh + ah*bl + al*bh (3xTF32).
template <class Frag>
__device__ __forceinline__ void tf32_split(Frag& hi, Frag& lo) {
#pragma unroll
  for (int e = 0; e < hi.num_elements; ++e) {
    const float x = hi.x[e];
    const float h = wmma::__float_to_tf32(x);
    lo.x[e] = wmma::__float_to_tf32(x - h);
    hi.x[e] = h;
  }
}

template <class Frag>
__device__ __forceinline__ void tf32_round(Frag& f) {
#pragma unroll
  for (int e = 0; e < f.num_elements; ++e) f.x[e] = wmma::__float_to_tf32(f.x[e]);
}

template <Prec PR>
__device__ __forceinline__ void wmma_step(WmmaAcc<PR>& acc, const Tiles<PR>& t) {
  constexpr int LDK = Tiles<PR>::LDK;
  constexpr int K = MmaShape<PR>::K;
  using AT = typename MmaShape<PR>::AType;
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
#pragma unroll
  for (int kk = 0; kk < BK; kk += K) {
    wmma::fragment<wmma::matrix_a, 16, 16, K, AT, wmma::row_major> a[2];
    wmma::fragment<wmma::matrix_b, 16, 16, K, AT, wmma::col_major> b[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], t.a + (wm * 32 + 16 * i) * LDK + kk, LDK);
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], t.b + (wn * 32 + 16 * j) * LDK + kk, LDK);
    if constexpr (PR == Prec::k3xTf32) {
      wmma::fragment<wmma::matrix_a, 16, 16, K, AT, wmma::row_major> alo[2];
      wmma::fragment<wmma::matrix_b, 16, 16, K, AT, wmma::col_major> blo[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) tf32_split(a[i], alo[i]);
#pragma unroll
      for (int j = 0; j < 2; ++j) tf32_split(b[j], blo[j]);
      // Small cross terms first, so they are not swamped before the main product is added.
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          wmma::mma_sync(acc.f[i][j], alo[i], b[j], acc.f[i][j]);
          wmma::mma_sync(acc.f[i][j], a[i], blo[j], acc.f[i][j]);
          wmma::mma_sync(acc.f[i][j], a[i], b[j], acc.f[i][j]);
        }
    } else {
      if constexpr (PR == Prec::kTf32) {
#pragma unroll
        for (int i = 0; i < 2; ++i) tf32_round(a[i]);
#pragma unroll
        for (int j = 0; j < 2; ++j) tf32_round(b[j]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc.f[i][j], a[i], b[j], acc.f[i][j]);
    }
  }
}

template <Prec PR>
__device__ __forceinline__ void wmma_store(const WmmaAcc<PR>& acc, Tiles<PR>& t) {
  constexpr int LDC = Tiles<PR>::LDC;
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(t.c + (wm * 32 + 16 * i) * LDC + wn * 32 + 16 * j, acc.f[i][j], LDC, wmma::mem_row_major);
}

template <Prec PR>
using Acc = std::conditional_t<PR == Prec::kFp32, SimtAcc, WmmaAcc<PR>>;

// One kernel for both outputs: TOPK keeps per-column lists, otherwise the scores are written.
template <Prec PR, bool TOPK>
__global__ void __launch_bounds__(kThreads) gemm_kernel(const Args g) {
  alignas(128) __shared__ unsigned char raw[sizeof(Tiles<PR>)];
  Tiles<PR>& t = *reinterpret_cast<Tiles<PR>*>(raw);
  constexpr int LDC = Tiles<PR>::LDC;

  const index_t n0 = static_cast<index_t>(blockIdx.x) * BN;
  const int split = blockIdx.y;
  const index_t mtiles = (g.R + BM - 1) / BM;

  // Top-k state of this thread's column: the list lives in the partial buffer, its current
  // worst entry in registers so most candidates are rejected without touching memory.
  const index_t my_n = n0 + threadIdx.x;
  const bool owns_column = TOPK && threadIdx.x < BN && my_n < g.N;
  float* lscore = nullptr;
  index_t* lindex = nullptr;
  float worst_s = INFINITY;
  index_t worst_i = sd::kNoIndex;
  float my_b = 0.f;
  if (owns_column) {
    const index_t off = (static_cast<index_t>(split) * g.N + my_n) * g.k;
    lscore = g.part_score + off;
    lindex = g.part_index + off;
    sd::topk_init(lscore, lindex, g.k);
    my_b = g.row_b[my_n];
  }

  Acc<PR> acc;
  for (index_t mt = split; mt < mtiles; mt += g.splits) {
    const index_t r0 = mt * BM;
    if constexpr (PR == Prec::kFp32) simt_zero(acc); else wmma_zero<PR>(acc);
    Staged st;
    fetch_tiles(st, g, r0, n0, 0);
    for (index_t k0 = 0; k0 < g.P; k0 += BK) {
      __syncthreads();  // the previous step's tiles are no longer read
      store_tiles<PR>(t, st);
      __syncthreads();
      if (k0 + BK < g.P) fetch_tiles(st, g, r0, n0, k0 + BK);
      if constexpr (PR == Prec::kFp32) simt_step(acc, t); else wmma_step<PR>(acc, t);
    }
    if constexpr (PR == Prec::kFp32) simt_store(acc, t); else wmma_store<PR>(acc, t);
    __syncthreads();

    const int mrows = static_cast<int>(min(static_cast<index_t>(BM), g.R - r0));
    if constexpr (TOPK) {
      if (owns_column) {
        for (int i = 0; i < mrows; ++i) {
          const index_t r = r0 + i;
          const float s = sd::combine(g.row_a[r], my_b, t.c[i * LDC + threadIdx.x], g.metric);
          if (sd::better(s, r, worst_s, worst_i)) {
            sd::topk_insert(lscore, lindex, g.k, s, r);
            worst_s = lscore[g.k - 1];
            worst_i = lindex[g.k - 1];
          }
        }
      }
    } else {
      for (int e = threadIdx.x; e < BM * BN; e += kThreads) {
        const int i = e / BN, j = e % BN;
        const index_t r = r0 + i, n = n0 + j;
        if (i < mrows && n < g.N) g.out[r * g.N + n] = sd::combine(g.row_a[r], g.row_b[n], t.c[i * LDC + j], g.metric);
      }
    }
    // The next tile's first barrier orders these reads of t.c before it is overwritten.
  }
}

// a_r (blocks [0, R)) and b_n (blocks [R, R+N)), summed in double by a fixed tree: deterministic.
constexpr int kRowThreads = 256;
__global__ void __launch_bounds__(kRowThreads) row_terms_kernel(const float* models, const float* data,
                                                                const float* weights, index_t R, index_t P,
                                                                int metric, float* out) {
  __shared__ double red[kRowThreads];
  const index_t row = blockIdx.x;
  const bool is_model = row < R;
  const float* v = is_model ? models + row * P : data + (row - R) * P;
  double acc = 0.0;
  for (index_t p = threadIdx.x; p < P; p += kRowThreads) {
    const float w = weights ? weights[p] : 1.f;
    acc += is_model ? sd::model_row_term<double>(v[p], w, metric) : sd::data_row_term<double>(v[p], w, metric);
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kRowThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[row] = static_cast<float>(red[0]);
}

// One thread per data column: k-way merge of the S sorted partial lists.
constexpr int kMergeThreads = 128;
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const float* part_score, const index_t* part_index,
                                                              index_t N, int k, int splits, index_t* out_index,
                                                              float* out_score) {
  const index_t n = static_cast<index_t>(blockIdx.x) * kMergeThreads + threadIdx.x;
  if (n >= N) return;
  int head[kMaxSplits];
  for (int s = 0; s < splits; ++s) head[s] = 0;
  for (int j = 0; j < k; ++j) {
    int best = 0;
    float bs = INFINITY;
    index_t bi = sd::kNoIndex;
    bool have = false;
    for (int s = 0; s < splits; ++s) {
      if (head[s] >= k) continue;
      const index_t o = (static_cast<index_t>(s) * N + n) * k + head[s];
      if (!have || sd::better(part_score[o], part_index[o], bs, bi)) {
        best = s;
        bs = part_score[o];
        bi = part_index[o];
        have = true;
      }
    }
    ++head[best];
    out_score[n * k + j] = bs;
    out_index[n * k + j] = sd::public_index(bi);
  }
}

constexpr int kSegThreads = 256;
__global__ void __launch_bounds__(kSegThreads) segmented_argmin_kernel(const float* values, const index_t* offsets,
                                                                       index_t* out_index, float* out_value) {
  __shared__ float rs[kSegThreads];
  __shared__ index_t ri[kSegThreads];
  const index_t seg = blockIdx.x;
  const index_t lo = offsets[seg], hi = offsets[seg + 1];
  float best = INFINITY;
  index_t bi = sd::kNoIndex;
  for (index_t i = lo + threadIdx.x; i < hi; i += kSegThreads) {
    const float v = values[i];
    if (sd::better(v, i - lo, best, bi)) {
      best = v;
      bi = i - lo;
    }
  }
  rs[threadIdx.x] = best;
  ri[threadIdx.x] = bi;
  __syncthreads();
  for (int s = kSegThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && sd::better(rs[threadIdx.x + s], ri[threadIdx.x + s], rs[threadIdx.x], ri[threadIdx.x])) {
      rs[threadIdx.x] = rs[threadIdx.x + s];
      ri[threadIdx.x] = ri[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out_index[seg] = sd::public_index(ri[0]);
    out_value[seg] = rs[0];
  }
}

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Stream-ordered scratch, released on scope exit (also when a later check throws).
class Scratch {
 public:
  Scratch(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
    SPK_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes == 0 ? 1 : bytes, stream));
  }
  ~Scratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

void check_problem(const DistanceProblem& a) {
  const index_t R = a.R, N = a.N, P = a.P;
  const int metric = a.metric;
  const float *models = a.models, *data = a.data;
  if (R <= 0 || N <= 0 || P <= 0)
    throw std::invalid_argument("`R`, `N` and `P` must be positive, got " + std::to_string(R) + ", " +
                                std::to_string(N) + ", " + std::to_string(P));
  if (!sd::valid_metric(metric)) throw std::invalid_argument("`metric` must be 0 (euclidean) or 1 (poisson), got " + std::to_string(metric));
  if (!models) throw std::invalid_argument("`models_ptr` is null");
  if (!data) throw std::invalid_argument("`data_ptr` is null");
  if ((N + BN - 1) / BN > 0x7fffffff) throw std::invalid_argument("`N` is too large for one launch");
}

int multiprocessors() {
  int dev = 0, sms = 0;
  SPK_CUDA_CHECK(cudaGetDevice(&dev));
  SPK_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

void launch_row_terms(const Args& g, float* rows, cudaStream_t st) {
  row_terms_kernel<<<static_cast<unsigned>(g.R + g.N), kRowThreads, 0, st>>>(g.models, g.data, g.weights, g.R, g.P,
                                                                             g.metric, rows);
  SPK_CUDA_CHECK_LAUNCH();
}

template <bool TOPK>
void launch_gemm(Prec prec, const Args& g, dim3 grid, cudaStream_t st) {
  switch (prec) {
    case Prec::kFp32: gemm_kernel<Prec::kFp32, TOPK><<<grid, kThreads, 0, st>>>(g); break;
    case Prec::k3xTf32: gemm_kernel<Prec::k3xTf32, TOPK><<<grid, kThreads, 0, st>>>(g); break;
    case Prec::kTf32: gemm_kernel<Prec::kTf32, TOPK><<<grid, kThreads, 0, st>>>(g); break;
    case Prec::kBf16: gemm_kernel<Prec::kBf16, TOPK><<<grid, kThreads, 0, st>>>(g); break;
    case Prec::kFp16: gemm_kernel<Prec::kFp16, TOPK><<<grid, kThreads, 0, st>>>(g); break;
  }
  SPK_CUDA_CHECK_LAUNCH();
}

}  // namespace

void distance_topk(const TopkLaunch& a) {
  const index_t R = a.R, N = a.N, P = a.P;
  const int k = a.k;
  check_problem(a);
  if (k < 1 || k > R) throw std::invalid_argument("`k` must be in [1, R=" + std::to_string(R) + "], got " + std::to_string(k));
  if (!a.out_index) throw std::invalid_argument("`out_index_ptr` is null");
  if (!a.out_score) throw std::invalid_argument("`out_score_ptr` is null");
  const Prec prec = parse_precision(a.precision);
  cudaStream_t st = as_stream(a.stream);

  const index_t ntiles_n = (N + BN - 1) / BN, ntiles_m = (R + BM - 1) / BM;
  // Enough blocks for ~4 per multiprocessor, at most 64 splits, and a partial buffer of at most
  // ~1 GiB (the Python layer batches N to stay far below that).
  const index_t target = 4 * static_cast<index_t>(multiprocessors());
  index_t splits = (target + ntiles_n - 1) / ntiles_n;
  const index_t entry = N * static_cast<index_t>(k) * static_cast<index_t>(sizeof(float) + sizeof(index_t));
  splits = std::min<index_t>({splits, ntiles_m, kMaxSplits, std::max<index_t>(1, (index_t(1) << 30) / entry)});
  splits = std::max<index_t>(splits, 1);

  const std::size_t nlist = static_cast<std::size_t>(splits) * N * k;
  Scratch rows(static_cast<std::size_t>(R + N) * sizeof(float), st);
  Scratch pidx(nlist * sizeof(index_t), st);
  Scratch pscore(nlist * sizeof(float), st);

  Args g{};
  g.models = a.models;
  g.data = a.data;
  g.weights = a.weights;
  g.row_a = rows.as<float>();
  g.row_b = rows.as<float>() + R;
  g.R = R;
  g.N = N;
  g.P = P;
  g.metric = a.metric;
  g.k = k;
  g.splits = static_cast<int>(splits);
  g.part_score = pscore.as<float>();
  g.part_index = pidx.as<index_t>();
  g.out = nullptr;

  launch_row_terms(g, rows.as<float>(), st);
  launch_gemm<true>(prec, g, dim3(static_cast<unsigned>(ntiles_n), static_cast<unsigned>(splits)), st);
  merge_kernel<<<static_cast<unsigned>((N + kMergeThreads - 1) / kMergeThreads), kMergeThreads, 0, st>>>(
      g.part_score, g.part_index, N, k, g.splits, a.out_index, a.out_score);
  SPK_CUDA_CHECK_LAUNCH();
}

void pairwise_score(const PairwiseLaunch& a) {
  const index_t R = a.R, N = a.N, P = a.P;
  check_problem(a);
  if (!a.out) throw std::invalid_argument("`out_ptr` is null");
  const Prec prec = parse_precision(a.precision);
  cudaStream_t st = as_stream(a.stream);
  const index_t ntiles_n = (N + BN - 1) / BN, ntiles_m = (R + BM - 1) / BM;
  const index_t splits = std::min<index_t>(ntiles_m, 65535);  // every block one or more model tiles

  Scratch rows(static_cast<std::size_t>(R + N) * sizeof(float), st);
  Args g{};
  g.models = a.models;
  g.data = a.data;
  g.weights = a.weights;
  g.row_a = rows.as<float>();
  g.row_b = rows.as<float>() + R;
  g.R = R;
  g.N = N;
  g.P = P;
  g.metric = a.metric;
  g.k = 1;
  g.splits = static_cast<int>(splits);
  g.out = a.out;

  launch_row_terms(g, rows.as<float>(), st);
  launch_gemm<false>(prec, g, dim3(static_cast<unsigned>(ntiles_n), static_cast<unsigned>(splits)), st);
}

void segmented_argmin(const SegmentedArgminLaunch& a) {
  const index_t S = a.S;
  if (S < 0) throw std::invalid_argument("`S` must be non-negative, got " + std::to_string(S));
  if (S == 0) return;
  if (S > 0x7fffffff) throw std::invalid_argument("`S` is too large for one launch");
  if (!a.offsets) throw std::invalid_argument("`offsets_ptr` is null");
  if (!a.out_index) throw std::invalid_argument("`out_index_ptr` is null");
  if (!a.out_value) throw std::invalid_argument("`out_value_ptr` is null");
  // values may be null when every segment is empty (an empty array has no allocation).
  segmented_argmin_kernel<<<static_cast<unsigned>(S), kSegThreads, 0, as_stream(a.stream)>>>(a.values, a.offsets,
                                                                                             a.out_index, a.out_value);
  SPK_CUDA_CHECK_LAUNCH();
}

}  // namespace spk::cuda
