// CPU distance kernels: a cache-blocked GEMM (packed panels, register-blocked micro-kernel)
// with the row terms, the metric and the top-k selection fused into the epilogue, so the
// R x N score matrix never exists (only an MC x NC tile per thread).
//
// The micro-kernel is written once with GCC vector extensions and compiled for AVX-512,
// AVX2+FMA and baseline SSE2 through target attributes; the widest one the CPU supports is
// picked at run time, so the wheel stays portable (no -march=native).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef SPK_WITH_OPENMP
#include <omp.h>
#endif

#include "spk/cpu_isa.h"
#include "spk/cpu_threads.h"
#include "spk/distance.h"

namespace spk::distance::cpu {

namespace {

// Block sizes: MC models x NC data columns per tile, pixels in chunks of KC (= kCpuChunk, the
// float32 summation length). MC and NC are multiples of every MR / NR below.
constexpr int MC = 96;
constexpr int NC = 128;
constexpr int KC = kCpuChunk;
constexpr int kMaxSplits = 64;

using spk::cpu::Isa;
using spk::cpu::isa_cap;
using spk::cpu::max_threads;

// 64-byte aligned scratch that frees itself.
template <class T>
struct Aligned {
  T* ptr = nullptr;
  explicit Aligned(std::size_t n) {
    std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    if (bytes == 0) bytes = 64;
    ptr = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!ptr) throw std::bad_alloc();
  }
  ~Aligned() { std::free(ptr); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
};

// out[MR x NR] = A^T B over kc pixels, A packed [kc][MR], B packed [kc][NR] (NR = NV * W).
// Accumulates in T from zero; the caller adds the chunk into double.
template <class T, int MR, int NV, int W>
__attribute__((always_inline)) inline void ukernel_body(int kc, const T* __restrict A,
                                                        const T* __restrict B, T* __restrict out) {
  typedef T V __attribute__((vector_size(W * sizeof(T))));
  constexpr int NR = NV * W;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = V{} ;
  for (int p = 0; p < kc; ++p) {
    V b[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], B + p * NR + v * W, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const T a = A[p * MR + i];
      for (int v = 0; v < NV; ++v) acc[i][v] += a * b[v];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) std::memcpy(out + i * NR + v * W, &acc[i][v], sizeof(V));
}

template <class T>
using UKernel = void (*)(int, const T*, const T*, T*);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SPK_X86_DISPATCH 1
__attribute__((target("avx512f,fma"))) void uk_f32_avx512(int kc, const float* A, const float* B, float* o) {
  ukernel_body<float, 12, 2, 16>(kc, A, B, o);
}
__attribute__((target("avx512f,fma"))) void uk_f64_avx512(int kc, const double* A, const double* B, double* o) {
  ukernel_body<double, 12, 2, 8>(kc, A, B, o);
}
__attribute__((target("avx2,fma"))) void uk_f32_avx2(int kc, const float* A, const float* B, float* o) {
  ukernel_body<float, 6, 2, 8>(kc, A, B, o);
}
__attribute__((target("avx2,fma"))) void uk_f64_avx2(int kc, const double* A, const double* B, double* o) {
  ukernel_body<double, 6, 2, 4>(kc, A, B, o);
}
#endif
void uk_f32_base(int kc, const float* A, const float* B, float* o) { ukernel_body<float, 4, 2, 4>(kc, A, B, o); }
void uk_f64_base(int kc, const double* A, const double* B, double* o) { ukernel_body<double, 4, 2, 2>(kc, A, B, o); }

template <class T>
struct Kernel {
  int mr, nr;
  UKernel<T> fn;
};

template <class T>
Kernel<T> pick_kernel();

template <>
Kernel<float> pick_kernel<float>() {
  const Isa cap = isa_cap();
#ifdef SPK_X86_DISPATCH
  if (cap >= Isa::avx512 && __builtin_cpu_supports("avx512f")) return {12, 32, &uk_f32_avx512};
  if (cap >= Isa::avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {6, 16, &uk_f32_avx2};
#endif
  return {4, 8, &uk_f32_base};
}
template <>
Kernel<double> pick_kernel<double>() {
  const Isa cap = isa_cap();
#ifdef SPK_X86_DISPATCH
  if (cap >= Isa::avx512 && __builtin_cpu_supports("avx512f")) return {12, 16, &uk_f64_avx512};
  if (cap >= Isa::avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {6, 8, &uk_f64_avx2};
#endif
  return {4, 4, &uk_f64_base};
}

template <class T>
struct Problem {
  const T* models;
  const T* data;
  const T* weights;  // nullptr: all ones
  index_t R, N, P;
  int metric;
  T weight(index_t p) const { return weights ? weights[p] : T(1); }
};

// a_r (MODEL) or b_n of one row, in double with 8 interleaved partial sums combined in a fixed
// order: deterministic, and free of one long chain of dependent adds.
template <bool MODEL, class T>
double row_sum(const T* x, const T* weights, index_t P, int metric) {
  if (!MODEL && metric == kPoisson) return 0.0;
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  auto term = [&](index_t p) {
    const T w = weights ? weights[p] : T(1);
    return MODEL ? model_row_term<double>(x[p], w, metric) : data_row_term<double>(x[p], w, metric);
  };
  index_t p = 0;
  for (; p + 8 <= P; p += 8)
    for (int l = 0; l < 8; ++l) s[l] += term(p + l);
  for (; p < P; ++p) s[p % 8] += term(p);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// One panel of MR models, pixels [k0, k0 + kc): dst[p * MR + i] = w f(x), zero past R.
template <class T>
void pack_models(const Problem<T>& pb, T* dst, index_t r_first, int MR, index_t k0, index_t kc) {
  for (int i = 0; i < MR; ++i) {
    const index_t r = r_first + i;
    if (r >= pb.R) {
      for (index_t p = 0; p < kc; ++p) dst[p * MR + i] = T(0);
      continue;
    }
    const T* x = pb.models + r * pb.P + k0;
    for (index_t p = 0; p < kc; ++p) dst[p * MR + i] = model_factor(x[p], pb.weight(k0 + p), pb.metric);
  }
}

void check_problem(index_t R, index_t N, index_t P, int metric) {
  if (R <= 0) throw std::invalid_argument("`models` must have at least one row");
  if (N <= 0) throw std::invalid_argument("`data` must have at least one row");
  if (P <= 0) throw std::invalid_argument("`models` and `data` must have at least one pixel");
  if (!valid_metric(metric)) throw std::invalid_argument("`metric` must be 0 (euclidean) or 1 (poisson), got " + std::to_string(metric));
}

// The fused GEMM. For every (MC x NC) tile of scores, calls epi(split, r0, mrows, n0, ncols,
// a, b, C) with C the double dot products (row stride NC). Work is split over data blocks and,
// when there are too few of them for the threads, over `splits` contiguous ranges of models.
template <class T, class Epilogue>
void fused_gemm(const Problem<T>& pb, int splits, Epilogue&& epi) {
  const Kernel<T> kern = pick_kernel<T>();
  const int MR = kern.mr, NR = kern.nr;
  const index_t R = pb.R, N = pb.N, P = pb.P;
  const index_t mpanels = (R + MR - 1) / MR;
  const index_t nmb = (R + MC - 1) / MC;
  const index_t ndb = (N + NC - 1) / NC;

  // Models are packed [panel][pixels][MR] as w_p f(x), zero past R. With many data blocks they
  // are packed once for all of them; with few (small N) each block packs its own KC-chunks into
  // a small per-thread buffer instead, which avoids allocating (and page-faulting) an R x P copy
  // that would be read only once or twice.
  const bool prepack = ndb > 2;
  Aligned<T> Ap(prepack ? static_cast<std::size_t>(mpanels * MR * P) : 0);
  std::vector<double> a(static_cast<std::size_t>(mpanels * MR), 0.0);
#pragma omp parallel for schedule(static)
  for (index_t mp = 0; mp < mpanels; ++mp) {
    for (int i = 0; i < MR; ++i) {
      const index_t r = mp * MR + i;
      if (r >= R) break;
      a[static_cast<std::size_t>(r)] = row_sum<true>(pb.models + r * P, pb.weights, P, pb.metric);
    }
    if (prepack) pack_models(pb, Ap.ptr + mp * MR * P, mp * MR, MR, 0, P);
  }

  const index_t ntasks = ndb * splits;
  // Per-thread scratch allocated up front: nothing may throw inside the parallel region.
  const int nthreads = max_threads();
  const std::size_t bp_size = static_cast<std::size_t>(NC) * P;
  const std::size_t c_size = static_cast<std::size_t>(MC) * NC;
  Aligned<T> Bp_all(bp_size * nthreads);
  Aligned<T> tmp_all(static_cast<std::size_t>(MR) * NR * nthreads);
  const std::size_t ab_size = prepack ? 0 : static_cast<std::size_t>(MC) * KC;
  Aligned<T> Ab_all(ab_size * nthreads);
  std::vector<double> b_all(static_cast<std::size_t>(NC) * nthreads);
  std::vector<double> C_all(c_size * nthreads);
#pragma omp parallel num_threads(nthreads)
  {
#ifdef SPK_WITH_OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
    T* const Bp = Bp_all.ptr + bp_size * tid;
    double* b = b_all.data() + static_cast<std::size_t>(NC) * tid;
    double* C = C_all.data() + c_size * tid;
    T* tmp = tmp_all.ptr + static_cast<std::size_t>(MR) * NR * tid;
    T* const Ab = Ab_all.ptr + ab_size * tid;
#pragma omp for schedule(dynamic, 1)
    for (index_t task = 0; task < ntasks; ++task) {
      const index_t db = task / splits;
      const int split = static_cast<int>(task % splits);
      const index_t n0 = db * NC;
      const int ncols = static_cast<int>(std::min<index_t>(NC, N - n0));
      const int npan = (ncols + NR - 1) / NR;
      // Data block packed [panel][P][NR], zero past N; b_n in double.
      for (int j = 0; j < npan * NR; ++j) {
        const int jp = j / NR, jj = j % NR;
        T* dst = Bp + static_cast<index_t>(jp) * P * NR + jj;
        if (j >= ncols) {
          for (index_t p = 0; p < P; ++p) dst[p * NR] = T(0);
          b[j] = 0.0;
          continue;
        }
        const T* y = pb.data + (n0 + j) * P;
        for (index_t p = 0; p < P; ++p) dst[p * NR] = y[p];
        b[j] = row_sum<false>(y, pb.weights, P, pb.metric);
      }
      const index_t mb_begin = nmb * split / splits, mb_end = nmb * (split + 1) / splits;
      for (index_t mb = mb_begin; mb < mb_end; ++mb) {
        const index_t r0 = mb * MC;
        const int mrows = static_cast<int>(std::min<index_t>(MC, R - r0));
        const int mpan = (mrows + MR - 1) / MR;
        std::fill(C, C + c_size, 0.0);
        for (index_t k0 = 0; k0 < P; k0 += KC) {
          const int kc = static_cast<int>(std::min<index_t>(KC, P - k0));
          const T* Ablock;
          index_t panel_stride;
          if (prepack) {
            Ablock = Ap.ptr + (r0 / MR) * MR * P + k0 * MR;
            panel_stride = static_cast<index_t>(MR) * P;
          } else {
            for (int ip = 0; ip < mpan; ++ip) pack_models(pb, Ab + ip * MR * kc, r0 + ip * MR, MR, k0, kc);
            Ablock = Ab;
            panel_stride = static_cast<index_t>(MR) * kc;
          }
          for (int ip = 0; ip < mpan; ++ip) {
            const T* Apanel = Ablock + ip * panel_stride;
            for (int jp = 0; jp < npan; ++jp) {
              kern.fn(kc, Apanel, Bp + static_cast<index_t>(jp) * P * NR + k0 * NR, tmp);
              for (int i = 0; i < MR; ++i) {
                double* c = C + static_cast<std::size_t>(ip * MR + i) * NC + jp * NR;
                const T* t = tmp + i * NR;
                for (int j = 0; j < NR; ++j) c[j] += static_cast<double>(t[j]);
              }
            }
          }
        }
        epi(split, r0, mrows, n0, ncols, a.data() + r0, b, C);
      }
    }
  }
}

// How many model ranges to split into so that all threads have work when N is small.
int choose_splits(index_t R, index_t N) {
  const index_t ndb = (N + NC - 1) / NC, nmb = (R + MC - 1) / MC;
  const index_t threads = max_threads();
  if (ndb >= 2 * threads) return 1;
  index_t s = (2 * threads + ndb - 1) / ndb;
  s = std::min<index_t>({s, nmb, kMaxSplits});
  return static_cast<int>(std::max<index_t>(s, 1));
}

}  // namespace

template <class T>
void topk(const T* models, const T* data, const T* weights, index_t R, index_t N, index_t P,
          int metric, int k, index_t* out_index, T* out_score) {
  check_problem(R, N, P, metric);
  if (k < 1 || k > R) throw std::invalid_argument("`k` must be in [1, R=" + std::to_string(R) + "], got " + std::to_string(k));
  const Problem<T> pb{models, data, weights, R, N, P, metric};
  const int splits = choose_splits(R, N);
  // Partial lists [split][n][k]; with one split they are the output itself.
  std::vector<T> pscore(splits > 1 ? static_cast<std::size_t>(splits) * N * k : 0);
  std::vector<index_t> pindex(pscore.size());
  T* lscore = splits > 1 ? pscore.data() : out_score;
  index_t* lindex = splits > 1 ? pindex.data() : out_index;
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < static_cast<index_t>(splits) * N; ++i) topk_init(lscore + i * k, lindex + i * k, k);

  fused_gemm(pb, splits, [&](int split, index_t r0, int mrows, index_t n0, int ncols, const double* a,
                             const double* b, const double* C) {
    for (int j = 0; j < ncols; ++j) {
      const index_t off = (static_cast<index_t>(split) * N + n0 + j) * k;
      T* s = lscore + off;
      index_t* ix = lindex + off;
      for (int i = 0; i < mrows; ++i) {
        const T sc = static_cast<T>(combine(a[i], b[j], C[static_cast<std::size_t>(i) * NC + j], metric));
        if (better(sc, r0 + i, s[k - 1], ix[k - 1])) topk_insert(s, ix, k, sc, r0 + i);
      }
    }
  });

  if (splits > 1) {
    // k-way merge of the sorted partial lists; the order is total, so the result does not
    // depend on the split.
#pragma omp parallel
    {
      int head[kMaxSplits];
#pragma omp for schedule(static)
      for (index_t n = 0; n < N; ++n) {
        std::fill(head, head + splits, 0);
        for (int j = 0; j < k; ++j) {
          int best = -1;
          T bs = T(0);
          index_t bi = kNoIndex;
          for (int s = 0; s < splits; ++s) {
            if (head[s] >= k) continue;
            const index_t o = (static_cast<index_t>(s) * N + n) * k + head[s];
            if (best < 0 || better(pscore[o], pindex[o], bs, bi)) {
              best = s;
              bs = pscore[o];
              bi = pindex[o];
            }
          }
          ++head[best];
          out_score[n * k + j] = bs;
          out_index[n * k + j] = bi;
        }
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < N * k; ++i) out_index[i] = public_index(out_index[i]);
}

template <class T>
void pairwise(const T* models, const T* data, const T* weights, index_t R, index_t N, index_t P,
              int metric, T* out) {
  check_problem(R, N, P, metric);
  const Problem<T> pb{models, data, weights, R, N, P, metric};
  fused_gemm(pb, choose_splits(R, N), [&](int, index_t r0, int mrows, index_t n0, int ncols, const double* a,
                                          const double* b, const double* C) {
    for (int i = 0; i < mrows; ++i) {
      T* o = out + (r0 + i) * N + n0;
      const double* c = C + static_cast<std::size_t>(i) * NC;
      for (int j = 0; j < ncols; ++j) o[j] = static_cast<T>(combine(a[i], b[j], c[j], metric));
    }
  });
}

template <class T>
void segmented_argmin(const T* values, index_t M, const index_t* offsets, index_t S, index_t* out_index,
                      T* out_value) {
  if (S < 0) throw std::invalid_argument("`offsets` must have at least one entry");
  for (index_t s = 0; s <= S; ++s) {
    if (offsets[s] < 0 || offsets[s] > M)
      throw std::invalid_argument("`offsets` entries must lie in [0, len(values)]");
    if (s > 0 && offsets[s] < offsets[s - 1]) throw std::invalid_argument("`offsets` must be non-decreasing");
  }
#pragma omp parallel for schedule(dynamic, 64)
  for (index_t s = 0; s < S; ++s) {
    T best = static_cast<T>(INFINITY);
    index_t bi = kNoIndex;
    const index_t lo = offsets[s], hi = offsets[s + 1];
    for (index_t i = lo; i < hi; ++i)
      if (better(values[i], i - lo, best, bi)) {
        best = values[i];
        bi = i - lo;
      }
    out_index[s] = public_index(bi);
    out_value[s] = best;
  }
}

template void topk<float>(const float*, const float*, const float*, index_t, index_t, index_t, int, int, index_t*, float*);
template void topk<double>(const double*, const double*, const double*, index_t, index_t, index_t, int, int, index_t*, double*);
template void pairwise<float>(const float*, const float*, const float*, index_t, index_t, index_t, int, float*);
template void pairwise<double>(const double*, const double*, const double*, index_t, index_t, index_t, int, double*);
template void segmented_argmin<float>(const float*, index_t, const index_t*, index_t, index_t*, float*);
template void segmented_argmin<double>(const double*, index_t, const index_t*, index_t, index_t*, double*);

}  // namespace spk::distance::cpu
