// Per-element math of the distance family, shared by the OpenMP loops (cpp/cpu/distance.cpp)
// and the CUDA kernels (cpp/cuda/distance.cu), so that the CPU tests exercise it.
//
// One general form for every metric, with models X (R,P), data Y (N,P), weights w (P,):
//
//     score(r, n) = a_r + b_n + c * sum_p w_p f(X[r,p]) Y[n,p]
//
//   metric 0 (euclidean): f(x) = x,     a_r = sum w x^2, b_n = sum w y^2, c = -2
//   metric 1 (poisson):   f(x) = log x, a_r = sum w x,   b_n = 0,         c = -1
//
// The weight is folded into the model side when a tile is loaded (w_p f(x)), so the inner
// product is a plain GEMM. Results are ordered by (score, index) ascending: equal scores go to
// the lowest model index, which makes the output independent of how the work was split.
//
// Precision choices (both paths):
//   * row terms a_r, b_n are accumulated in double and rounded once to the working type;
//   * the CPU float32 path accumulates the inner product in float32 over chunks of at most
//     `kCpuChunk` pixels and adds the chunk sums in double; the combination a + b + c*dot is
//     done in double and rounded once to float32, then ranked in float32 (so the ranking is
//     exactly the ranking of the returned scores);
//   * the CUDA path accumulates in float32 (tensor-core or FFMA) and combines in float32.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "spk/common.h"

namespace spk::distance {

enum Metric : int { kEuclidean = 0, kPoisson = 1 };

// Largest pixel chunk the CPU float32 path sums in float32 before adding into double.
constexpr int kCpuChunk = 256;

// Placeholder index of an unfilled top-k slot: loses every tie against a real model index.
constexpr index_t kNoIndex = std::numeric_limits<index_t>::max();

SPK_HD bool valid_metric(int metric) { return metric == kEuclidean || metric == kPoisson; }

// f(x): the transform applied to a model pixel before the inner product.
template <class T>
SPK_HD T transform(T x, int metric) {
#if defined(__CUDA_ARCH__)
  return metric == kPoisson ? static_cast<T>(log(x)) : x;
#else
  return metric == kPoisson ? static_cast<T>(std::log(x)) : x;
#endif
}

// The weighted, transformed model value that enters the inner product.
template <class T>
SPK_HD T model_factor(T x, T w, int metric) {
  return w * transform(x, metric);
}

// Contribution of one model pixel to a_r (accumulate in A, usually double).
template <class A, class T>
SPK_HD A model_row_term(T x, T w, int metric) {
  const A xa = static_cast<A>(x), wa = static_cast<A>(w);
  return metric == kPoisson ? wa * xa : wa * xa * xa;
}

// Contribution of one data pixel to b_n (the poisson score has no data-only term).
template <class A, class T>
SPK_HD A data_row_term(T y, T w, int metric) {
  const A ya = static_cast<A>(y), wa = static_cast<A>(w);
  return metric == kPoisson ? A(0) : wa * ya * ya;
}

// c in score = a + b + c * dot.
template <class T>
SPK_HD T dot_coefficient(int metric) {
  return metric == kPoisson ? T(-1) : T(-2);
}

template <class T>
SPK_HD T combine(T a, T b, T dot, int metric) {
  return a + b + dot_coefficient<T>(metric) * dot;
}

// Strict total order on candidates: lower score first, then lower index. NaN scores never
// count as better, so a NaN candidate is never kept.
template <class T>
SPK_HD bool better(T s1, index_t i1, T s2, index_t i2) {
  return s1 < s2 || (s1 == s2 && i1 < i2);
}

// Empty top-k list: every slot +inf / kNoIndex.
template <class T>
SPK_HD void topk_init(T* score, index_t* index, int k) {
  for (int j = 0; j < k; ++j) {
    score[j] = static_cast<T>(INFINITY);
    index[j] = kNoIndex;
  }
}

// Insert (s, i) into a list sorted ascending by (score, index), keeping its k best.
// Returns whether it was kept. O(k) worst case; callers usually test the last slot first.
template <class T>
SPK_HD bool topk_insert(T* score, index_t* index, int k, T s, index_t i) {
  if (!better(s, i, score[k - 1], index[k - 1])) return false;
  int j = k - 1;
  while (j > 0 && better(s, i, score[j - 1], index[j - 1])) {
    score[j] = score[j - 1];
    index[j] = index[j - 1];
    --j;
  }
  score[j] = s;
  index[j] = i;
  return true;
}

// Public index of a slot: -1 for a slot nothing filled (only possible with NaN scores).
SPK_HD index_t public_index(index_t i) { return i == kNoIndex ? index_t(-1) : i; }

// CPU entry points (cpp/cpu/distance.cpp). Arrays are C-contiguous host memory; `weights` may
// be nullptr (all ones). T is float or double. Throw std::invalid_argument on bad sizes.
namespace cpu {
// For each data row n, the k best models in ascending (score, index) order:
// out_index (N,k), out_score (N,k).
template <class T>
void topk(const T* models, const T* data, const T* weights, index_t R, index_t N, index_t P,
          int metric, int k, index_t* out_index, T* out_score);
// The full score matrix out (R,N).
template <class T>
void pairwise(const T* models, const T* data, const T* weights, index_t R, index_t N, index_t P,
              int metric, T* out);
// Per segment [offsets[s], offsets[s+1]) of values (M,): index local to the segment of the
// first minimum (-1 when empty) and its value (+inf when empty).
template <class T>
void segmented_argmin(const T* values, index_t M, const index_t* offsets, index_t S,
                      index_t* out_index, T* out_value);
}  // namespace cpu

}  // namespace spk::distance
