// Per-element math of the 3-D NUFFT spreading/interpolation, shared by the CPU loops
// (cpp/cpu/nufft.cpp) and the CUDA kernels (cpp/cuda/nufft.cu), so that the CPU tests also cover
// the arithmetic the GPU runs.
//
// Conventions: a point x in [-pi, pi) sits at fine-grid coordinate
// t = x * n / (2 pi) in [-n/2, n/2); its w support cells are l0, ..., l0 + w - 1 (mod n) with
// l0 = ceil(t - w/2), and the weight of cell l0 + j is phi((l0 + j - t) / (w/2)) for the
// exponential-of-semicircle kernel phi(z) = exp(beta (sqrt(1 - z^2) - 1)).
#pragma once

#include <cmath>

#include "spk/common.h"

namespace spk::nufft {

// Host code needs the float overloads from std::; nvcc provides the same names in device code.
using std::ceil;
using std::exp;
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

// The w weights of one axis, evaluated directly (what the GPU uses: exp and sqrt are cheap there).
template <typename T>
SPK_HD void weights_direct(T u, int w, T beta, T* out) {
  const T inv_half = static_cast<T>(2) / static_cast<T>(w);
  for (int j = 0; j < w; ++j) out[j] = es_kernel((u + static_cast<T>(j)) * inv_half, beta);
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
