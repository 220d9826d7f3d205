// Per-element math of the 3-D NUFFT spreading/interpolation, shared by the CPU loops
// (cpp/cpu/nufft.cpp) and the CUDA kernels (cpp/cuda/nufft.cu), so that the CPU tests also cover
// the arithmetic the GPU runs.
//
// Conventions: a point x in [-pi, pi) sits at fine-grid coordinate
// t = x * n / (2 pi) in [-n/2, n/2); its w support cells are l0, ..., l0 + w - 1 (mod n) with
// l0 = ceil(t - w/2), and the weight of cell l0 + j is phi((l0 + j - t) / (w/2)). The kernel
// phi is named by one shape number beta: beta > 0 is the exponential of semicircle (ES)
// phi(z) = exp(beta (sqrt(1 - z^2) - 1)); beta < 0 is the prolate spheroidal wave function of
// order 0 and bandwidth c = -beta, psi_0^c(z) / psi_0^c(0) (see pswf_chi0 / pswf_sum).
// Twin: python/spkernels/backends/numba_math/nufft.py (same names, same arithmetic).
#pragma once

#include <cmath>

#include "spk/common.h"

namespace spk::nufft {

// Host code needs the float overloads from std::; nvcc provides the same names in device code.
using std::ceil;
using std::exp;
using std::fabs;
using std::floor;
using std::sqrt;

// Largest kernel width the core supports (eps down to ~1e-15 needs 16).
constexpr int kMaxWidth = 16;

template <typename T>
SPK_HD T two_pi() {
  return static_cast<T>(6.283185307179586476925286766559);
}

// Fold into [-pi, pi). Python folds [-3pi, 3pi) already; this is the defensive path for any
// finite value, so the index arithmetic below can never overflow.
template <typename T>
SPK_HD T fold(T x) {
  const T pi = static_cast<T>(3.14159265358979323846264338327950);
  if (x >= -pi && x < pi) return x;
  T r = x - two_pi<T>() * floor((x + pi) / two_pi<T>());
  // Rounding can land exactly on pi (or, for huge |x|, anywhere): clamp into the range.
  if (!(r >= -pi)) r = -pi;
  if (r >= pi) r = -pi;
  return r;
}

// Fine-grid coordinate of a point: t in [-n/2, n/2] (n/2 only through rounding).
template <typename T>
SPK_HD T grid_coord(T x, index_t n) {
  return fold(x) * (static_cast<T>(n) / two_pi<T>());
}

// Periodic index wrap into [0, n) for any l.
SPK_HD index_t wrap(index_t l, index_t n) {
  // Folded points give l in [-n, 2n): avoid the integer division there.
  if (l >= 0 && l < n) return l;
  if (l < 0 && l >= -n) return l + n;
  if (l >= n && l < 2 * n) return l - n;
  const index_t r = l % n;
  return r < 0 ? r + n : r;
}

// Everything spreading or interpolation needs from one coordinate on one axis:
//   l0 : first support cell, wrapped into [0, n);
//   u  : l0_unwrapped - t, in [-w/2, -w/2 + 1); the weight of cell l0 + j is phi((u + j) / (w/2)).
template <typename T>
struct AxisPoint {
  index_t l0;
  T u;
};

template <typename T>
SPK_HD AxisPoint<T> axis_point(T x, index_t n, int w) {
  const T t = grid_coord(x, n);
  const T s = ceil(t - static_cast<T>(0.5) * static_cast<T>(w));
  AxisPoint<T> p;
  p.l0 = wrap(static_cast<index_t>(s), n);
  p.u = s - t;
  return p;
}

// Bin of a point along one axis: cell floor(t) (wrapped) divided by the bin size. Its support
// then lies in cells [c - floor(w/2), c + ceil(w/2)] (exactly, also in floating point, because
// rounding is monotonic), which is what the gather uses to find the bins reaching a tile.
template <typename T>
SPK_HD index_t axis_bin(T x, index_t n, index_t bs) {
  const T t = grid_coord(x, n);
  return wrap(static_cast<index_t>(floor(t)), n) / bs;
}

// bin id = (b1 * nb2 + b2) * nb3 + b3
template <typename T>
SPK_HD index_t bin_id(T x, T y, T z, index_t n1, index_t n2, index_t n3, index_t bs1, index_t bs2,
                      index_t bs3) {
  const index_t nb2 = (n2 + bs2 - 1) / bs2, nb3 = (n3 + bs3 - 1) / bs3;
  return (axis_bin(x, n1, bs1) * nb2 + axis_bin(y, n2, bs2)) * nb3 + axis_bin(z, n3, bs3);
}

// Exponential of semicircle, phi(z) = exp(beta (sqrt(1 - z^2) - 1)) on |z| < 1, else 0.
template <typename T>
SPK_HD T es_kernel(T z, T beta) {
  const T s = static_cast<T>(1) - z * z;
  return s > static_cast<T>(0) ? exp(beta * (sqrt(s) - static_cast<T>(1))) : static_cast<T>(0);
}

// ---- PSWF (prolate spheroidal wave function psi_0^c), from its even Legendre series ---------
// psi = sum_k d_k P_k(z), k even. The prolate operator -((1 - z^2) psi')' + c^2 z^2 psi = chi psi
// is tridiagonal in that basis; chi_0 comes from Newton on its determinant, the d_k from the
// backward (Miller) recurrence fused with Clenshaw's sum, so no array is needed (the GPU runs it
// per point and axis). Always in double: the kernel's shape must not depend on T.

// Even terms kept for bandwidth c (the last ones are below 1e-17 of the first).
SPK_HD int pswf_terms(double c) { return 13 + static_cast<int>(0.5 * c); }

SPK_HD double pswf_diag(double k, double c2) {
  return k * (k + 1.0) + c2 * (2.0 * k * k + 2.0 * k - 1.0) / ((2.0 * k - 1.0) * (2.0 * k + 3.0));
}
// z^2 P_k = up(k) P_{k+2} + (...) P_k + down(k) P_{k-2}
SPK_HD double pswf_up(double k) { return (k + 1.0) * (k + 2.0) / ((2.0 * k + 1.0) * (2.0 * k + 3.0)); }
SPK_HD double pswf_down(double k) { return k * (k - 1.0) / ((2.0 * k - 1.0) * (2.0 * k + 1.0)); }

// Newton on det(T - chi I) from chi = max(0, c - 1) <= chi_0 (measured 0 < c - chi_0 < 0.88 for
// 0 < c <= 40): left of a real-rooted polynomial's smallest root Newton rises monotonically to
// it; d/dchi log|det| = sum q_i' / q_i over the pivots q_i. Returns -1 when the start is not
// below chi_0 (then the caller bisects).
SPK_HD double pswf_chi0_newton(double c) {
  const int K = pswf_terms(c);
  const double c2 = c * c;
  double x = c - 1.0 > 0.0 ? c - 1.0 : 0.0;
  for (int it = 0; it < 60; ++it) {
    double q = pswf_diag(0.0, c2) - x;
    if (q <= 0.0) return it > 0 ? x : -1.0;
    double dq = -1.0, s = dq / q;
    for (int i = 1; i < K; ++i) {
      const double k = 2.0 * i;
      const double r = c2 * c2 * pswf_up(k - 2.0) * pswf_down(k) / q;
      const double qn = pswf_diag(k, c2) - x - r;
      if (qn <= 0.0) return it > 0 ? x : -1.0;  // rounding put x at chi_0
      dq = -1.0 + r * dq / q;
      q = qn;
      s += dq / q;
    }
    const double step = -1.0 / s;
    x += step;
    if (step <= 1e-16 * (x > 1.0 ? x : 1.0)) return x;
  }
  return x;
}

// Bisection on [0, c^2/3] (the operator is positive; c^2/3 is P_0's Rayleigh quotient); a
// negative pivot of T - chi I means an eigenvalue below chi.
SPK_HD double pswf_chi0_bisect(double c) {
  const int K = pswf_terms(c);
  const double c2 = c * c;
  double lo = 0.0, hi = c2 / 3.0;
  for (int it = 0; it < 80; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    double q = pswf_diag(0.0, c2) - mid;
    bool below = q < 0.0;
    for (int i = 1; i < K && !below; ++i) {
      const double k = 2.0 * i;
      if (q == 0.0) q = 1e-300;
      q = pswf_diag(k, c2) - mid - c2 * c2 * pswf_up(k - 2.0) * pswf_down(k) / q;
      below = q < 0.0;
    }
    if (below)
      hi = mid;
    else
      lo = mid;
  }
  return 0.5 * (lo + hi);
}

// Smallest eigenvalue chi_0 of the prolate operator of bandwidth c, to rounding.
SPK_HD double pswf_chi0(double c) {
  const double x = pswf_chi0_newton(c);
  return x >= 0.0 ? x : pswf_chi0_bisect(c);
}

// Unnormalised psi_0^c(z) for z in [-1, 1] (the same arbitrary scale for every z).
SPK_HD double pswf_sum(double z, double c, double chi) {
  const int K = pswf_terms(c);
  const double c2 = c * c;
  double dk2 = 0.0, dk = 1.0, b1 = 0.0, b2 = 0.0;
  for (int j = 2 * (K - 1) + 1; j >= 0; --j) {
    const double coef = (j % 2 == 0) ? dk : 0.0;
    const double b0 = coef + ((2.0 * j + 1.0) * z / (j + 1.0)) * b1 - ((j + 1.0) / (j + 2.0)) * b2;
    b2 = b1;
    b1 = b0;
    if (j % 2 == 0 && j >= 2) {
      const double k = static_cast<double>(j);
      const double dm = -((pswf_diag(k, c2) - chi) * dk + c2 * pswf_down(k + 2.0) * dk2) / (c2 * pswf_up(k - 2.0));
      dk2 = dk;
      dk = dm;
      if (fabs(dk) > 1e150) {
        dk *= 1e-150;
        dk2 *= 1e-150;
        b1 *= 1e-150;
        b2 *= 1e-150;
      }
    }
  }
  return b1;
}

// phi(z) for the kernel named by beta (ES for beta > 0, PSWF of bandwidth -beta for beta < 0).
SPK_HD double kernel_value(double z, double beta) {
  if (beta > 0.0) return es_kernel(z, beta);
  if (z > 1.0 || z < -1.0) return 0.0;
  const double c = -beta, chi = pswf_chi0(c);
  return pswf_sum(z, c, chi) / pswf_sum(0.0, c, chi);
}

// The w weights of one axis, evaluated directly (what the GPU uses). ES: exp and sqrt are cheap
// there; PSWF: one eigenvalue solve per call, then w + 1 series sums.
template <typename T>
SPK_HD void weights_direct(T u, int w, T beta, T* out) {
  const T inv_half = static_cast<T>(2) / static_cast<T>(w);
  if (beta > static_cast<T>(0)) {
    for (int j = 0; j < w; ++j) out[j] = es_kernel((u + static_cast<T>(j)) * inv_half, beta);
    return;
  }
  const double c = -static_cast<double>(beta), chi = pswf_chi0(c);
  const double inv0 = 1.0 / pswf_sum(0.0, c, chi);
  for (int j = 0; j < w; ++j) {
    const double zz = (static_cast<double>(u) + j) * (2.0 / w);
    out[j] = (zz > 1.0 || zz < -1.0) ? static_cast<T>(0) : static_cast<T>(pswf_sum(zz, c, chi) * inv0);
  }
}

// Piecewise-polynomial form of the same weights (what the CPU uses, where exp is the cost):
// with xi = 2 (u + w/2) - 1 in [-1, 1), weight j = sum_k coef[k * stride + j] xi^(deg - k).
// The coefficients come from nufft_horner_table (cpu/nufft.cpp); stride >= w, padded with zeros,
// so the loop over j has a fixed trip count the compiler can vectorise.
template <typename T, int Stride>
SPK_HD void weights_horner(T u, int w, int deg, const T* coef, T* out) {
  const T xi = static_cast<T>(2) * (u + static_cast<T>(0.5) * static_cast<T>(w)) - static_cast<T>(1);
  T acc[Stride];
  for (int j = 0; j < Stride; ++j) acc[j] = coef[j];
  for (int k = 1; k <= deg; ++k) {
    const T* c = coef + k * Stride;
    for (int j = 0; j < Stride; ++j) acc[j] = acc[j] * xi + c[j];
  }
  for (int j = 0; j < Stride; ++j) out[j] = acc[j];
}

// Relative position of tile cell i (tile origin a) in the support starting at l0, both in
// [0, n): returns j with a + i == l0 + j (mod n), in [0, n); the cell is in the support iff
// j < w. With 0 <= i < n and o = wrap(l0 - a), j = i - o or i - o + n.
SPK_HD index_t support_offset(index_t i, index_t o, index_t n) {
  const index_t j = i - o;
  return j < 0 ? j + n : j;
}

// Whether a support of w cells starting at offset o = wrap(l0 - a) meets a tile of len cells.
SPK_HD bool support_meets_tile(index_t o, index_t len, index_t n, int w) {
  return o < len || o + w > n;
}

}  // namespace spk::nufft

// Host entry points of the CPU implementation (cpp/cpu/nufft.cpp), called by the bindings.
// Complex arrays are interleaved (re, im) of T; sizes are in elements.
#include <array>

namespace spk::cpu::nufft {

using dims3 = std::array<std::int64_t, 3>;

// Stable counting sort of the points by bin: perm (M), bin_offsets (nbins + 1).
template <typename T>
void setpts(const T* x, const T* y, const T* z, std::int64_t M, dims3 n, dims3 bs,
            std::int64_t* perm, std::int64_t* bin_offsets);

// Type 1 spreading into fine (V, n1, n2, n3), which the function fully overwrites.
// gather == true: output-driven over tiles = bins, bitwise deterministic for any thread count.
// gather == false: point-driven scatter baseline (thread-private grids summed at the end, or
// atomics when those grids would not fit); see nufft.cpp.
template <typename T>
void spread(const T* x, const T* y, const T* z, const T* c, std::int64_t V, std::int64_t M,
            const std::int64_t* perm, const std::int64_t* bin_offsets, dims3 n, dims3 bs, int w,
            double beta, bool gather, T* fine);

// Type 2 interpolation: c (V, M) at the points from fine (V, n1, n2, n3), point-driven in perm order.
template <typename T>
void interp(const T* x, const T* y, const T* z, const T* fine, std::int64_t V, std::int64_t M,
            const std::int64_t* perm, dims3 n, int w, double beta, T* c);

}  // namespace spk::cpu::nufft
