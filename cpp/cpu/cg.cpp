// Conjugate gradient vector kernels on the CPU: fused, one pass per call, deterministic sums.
#include "spk/cg.h"

#include <algorithm>
#include <vector>

namespace spk {
namespace {

// Fixed chunk size: partial sums per chunk, added in chunk order, independent of threads.
constexpr index_t kChunk = 4096;
// Below this many elements a parallel region costs more than it saves (and on a busy machine
// waking threads costs milliseconds); the chunked sums are the same either way.
constexpr index_t kParallelMin = 1 << 15;

index_t n_chunks(index_t n) { return (n + kChunk - 1) / kChunk; }

template <typename T>
double dot(const T* a, const T* b, index_t n, bool cplx, double* im_out) {
  const index_t nc = n_chunks(n);
  std::vector<double> re(static_cast<std::size_t>(nc)), im(cplx ? static_cast<std::size_t>(nc) : 0);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (index_t c = 0; c < nc; ++c) {
    const index_t lo = c * kChunk, hi = std::min(n, lo + kChunk);
    double s = 0.0, t = 0.0;
    if (cplx) {
      for (index_t i = lo; i < hi; i += 2) {
        const double ar = a[i], ai = a[i + 1], br = b[i], bi = b[i + 1];
        s += ar * br + ai * bi;
        t += ar * bi - ai * br;
      }
      im[c] = t;
    } else {
      // Four independent running sums (combined in a fixed order) break the add latency
      // chain so the loop runs at memory speed; still bitwise reproducible.
      double s4[4] = {0.0, 0.0, 0.0, 0.0};
      index_t i = lo;
      for (; i + 4 <= hi; i += 4)
        for (int l = 0; l < 4; ++l) s4[l] += static_cast<double>(a[i + l]) * static_cast<double>(b[i + l]);
      for (; i < hi; ++i) s4[0] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
      s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    }
    re[c] = s;
  }
  double s = 0.0, t = 0.0;
  for (index_t c = 0; c < nc; ++c) s += re[c];
  if (cplx)
    for (index_t c = 0; c < nc; ++c) t += im[c];
  if (im_out) *im_out = t;
  return s;
}

template <typename T>
double update_xr(T* x, T* r, const T* p, const T* q, index_t n, double alpha) {
  const index_t nc = n_chunks(n);
  std::vector<double> part(static_cast<std::size_t>(nc));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (index_t c = 0; c < nc; ++c) {
    const index_t lo = c * kChunk, hi = std::min(n, lo + kChunk);
    double s4[4] = {0.0, 0.0, 0.0, 0.0};
    index_t i = lo;
    for (; i + 4 <= hi; i += 4) {
      for (int l = 0; l < 4; ++l) {
        x[i + l] = static_cast<T>(x[i + l] + alpha * p[i + l]);
        const T ri = static_cast<T>(r[i + l] - alpha * q[i + l]);
        r[i + l] = ri;
        s4[l] += static_cast<double>(ri) * static_cast<double>(ri);
      }
    }
    for (; i < hi; ++i) {
      x[i] = static_cast<T>(x[i] + alpha * p[i]);
      const T ri = static_cast<T>(r[i] - alpha * q[i]);
      r[i] = ri;
      s4[0] += static_cast<double>(ri) * static_cast<double>(ri);
    }
    const double s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    part[c] = s;
  }
  double s = 0.0;
  for (index_t c = 0; c < nc; ++c) s += part[c];
  return s;
}

template <typename T>
void update_p(T* p, const T* z, index_t n, double beta) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (index_t i = 0; i < n; ++i) p[i] = static_cast<T>(z[i] + beta * p[i]);
}

}  // namespace

double cg_dot_cpu(const void* a, const void* b, index_t n, bool single, bool cplx, double* im_out) {
  return single ? dot(static_cast<const float*>(a), static_cast<const float*>(b), n, cplx, im_out)
                : dot(static_cast<const double*>(a), static_cast<const double*>(b), n, cplx, im_out);
}

double cg_update_xr_cpu(void* x, void* r, const void* p, const void* q, index_t n, bool single, double alpha) {
  return single ? update_xr(static_cast<float*>(x), static_cast<float*>(r), static_cast<const float*>(p),
                            static_cast<const float*>(q), n, alpha)
                : update_xr(static_cast<double*>(x), static_cast<double*>(r), static_cast<const double*>(p),
                            static_cast<const double*>(q), n, alpha);
}

void cg_update_p_cpu(void* p, const void* z, index_t n, bool single, double beta) {
  if (single)
    update_p(static_cast<float*>(p), static_cast<const float*>(z), n, beta);
  else
    update_p(static_cast<double*>(p), static_cast<const double*>(z), n, beta);
}

}  // namespace spk
