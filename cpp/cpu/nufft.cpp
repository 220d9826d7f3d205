#ifndef SPK_NUFFT_HOT_PASS
// CPU (OpenMP) spreading, interpolation and binning of the 3-D NUFFT.
//
// - setpts: stable parallel counting sort of the points by bin (ties keep the original order), so
//   the permutation is the same for every thread count.
// - interp (type 2): point-driven gather in perm order; each point reads its w^3 neighbourhood.
// - spread (type 1), "gather": output-driven. Tiles = bins; one thread owns one tile, sums into a
//   private tile buffer the contributions of the points of the bins whose support can reach the
//   tile (in ascending bin id, points in perm order, kernel support clipped to the tile), then
//   writes the tile. No atomics; the same bits for any thread count.
// - spread, "scatter" (the baseline): point-driven. Each thread spreads a contiguous chunk of the
//   sorted points into its own full-size grid (thread 0 into the output), and the grids are summed
//   cell by cell at the end; when the private grids would exceed kScatterPrivateBytes it falls back
//   to OpenMP atomics on the output. Results depend on the thread count (and, with atomics, on
//   timing), as a scatter's do.
//
// Kernel weights are evaluated with a per-call piecewise-polynomial (Horner) fit of the
// exponential of semicircle, one polynomial per support offset, fitted to well below eps: the
// direct exp/sqrt per weight dominated the cost of spreading.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef SPK_WITH_OPENMP
#include <omp.h>
#endif

#include "spk/cpu_isa.h"
#include "spk/cpu_threads.h"
#include "spk/nufft.h"
#include "spk/nufft_horner.h"

namespace spk::cpu::nufft {
namespace {

using spk::index_t;
namespace m = spk::nufft;

constexpr std::size_t kScatterPrivateBytes = std::size_t(2) << 30;

// Explicit vectorisation hints for the fixed-length inner loops (GCC's SLP pass otherwise emits
// them as unrolled scalar FMAs).
#if defined(SPK_WITH_OPENMP)
#define SPK_SIMD _Pragma("omp simd")
#else
#define SPK_SIMD
#endif
#if defined(__GNUC__) || defined(__clang__)
#define SPK_RESTRICT __restrict__
#else
#define SPK_RESTRICT
#endif

using spk::cpu::max_threads;
using spk::cpu::num_threads;
using spk::cpu::thread_id;

// ---- Horner table: spk/nufft_horner.h (shared with the CUDA launchers) ----------------------

using m::Horner;
using m::make_horner;
using m::stride_for;

// ---- binning ----------------------------------------------------------------------------

template <typename T>
void setpts_impl(const T* x, const T* y, const T* z, index_t M, dims3 n, dims3 bs, index_t* perm,
                 index_t* offsets) {
  const index_t nb1 = (n[0] + bs[0] - 1) / bs[0], nb2 = (n[1] + bs[1] - 1) / bs[1],
                nb3 = (n[2] + bs[2] - 1) / bs[2];
  const index_t nbins = nb1 * nb2 * nb3;
  std::vector<index_t> key(static_cast<std::size_t>(M));
  const int T_ = std::max(1, std::min<int>(max_threads(), static_cast<int>(std::max<index_t>(1, M / 4096))));
  std::vector<index_t> cnt(static_cast<std::size_t>(T_) * nbins, 0);
#ifdef SPK_WITH_OPENMP
#pragma omp parallel num_threads(T_)
#endif
  {
    for (int t = thread_id(); t < T_; t += num_threads()) {
      const index_t i0 = M * t / T_, i1 = M * (t + 1) / T_;
      index_t* ct = cnt.data() + static_cast<std::size_t>(t) * nbins;
      for (index_t i = i0; i < i1; ++i) {
        const index_t b = m::bin_id(x[i], y[i], z[i], n[0], n[1], n[2], bs[0], bs[1], bs[2]);
        key[i] = b;
        ++ct[b];
      }
    }
  }
  index_t run = 0;
  for (index_t b = 0; b < nbins; ++b) {
    offsets[b] = run;
    for (int t = 0; t < T_; ++t) {
      index_t& c = cnt[static_cast<std::size_t>(t) * nbins + b];
      const index_t k = c;
      c = run;
      run += k;
    }
  }
  offsets[nbins] = run;
#ifdef SPK_WITH_OPENMP
#pragma omp parallel num_threads(T_)
#endif
  {
    for (int t = thread_id(); t < T_; t += num_threads()) {
      const index_t i0 = M * t / T_, i1 = M * (t + 1) / T_;
      index_t* ct = cnt.data() + static_cast<std::size_t>(t) * nbins;
      for (index_t i = i0; i < i1; ++i) perm[ct[key[i]]++] = i;
    }
  }
}


// The hot loops below are compiled twice from this same file: once for the baseline ISA and,
// on x86-64 with GCC/Clang, once for AVX2+FMA, picked at run time, so wheels stay portable and
// machines that have AVX2 use it.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define SPK_NUFFT_X86_DISPATCH 1
#else
#define SPK_NUFFT_X86_DISPATCH 0
#endif
#define SPK_NUFFT_HOT_PASS 1
namespace generic {
#include "nufft.cpp"  // NOLINT(build/include): the hot section of this file, baseline ISA
}  // namespace generic
#if SPK_NUFFT_X86_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "nufft.cpp"  // NOLINT(build/include): the hot section again, AVX2 + FMA
}  // namespace avx2
#pragma GCC pop_options
bool use_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has && isa_cap() >= Isa::avx2;
}
#endif
#undef SPK_NUFFT_HOT_PASS

// ---- width dispatch -----------------------------------------------------------------------

template <template <int> class F, typename... Args>
void dispatch_width(int w, Args&&... args) {
  switch (w) {
#define SPK_W(k) \
  case k:        \
    return F<k>::run(args...);
    SPK_W(2) SPK_W(3) SPK_W(4) SPK_W(5) SPK_W(6) SPK_W(7) SPK_W(8) SPK_W(9) SPK_W(10) SPK_W(11)
    SPK_W(12) SPK_W(13) SPK_W(14) SPK_W(15) SPK_W(16)
#undef SPK_W
    default:
      throw std::invalid_argument("`w` must be in [2, 16], got " + std::to_string(w));
  }
}

// One runtime-ISA dispatcher per kernel: Name<T>::K<W>::run calls the AVX2 build when the CPU
// has it, else the generic one. Function templates cannot be template arguments, hence a macro
// (and the AVX2 line as its own macro: an #if cannot stand inside a macro body).
#if SPK_NUFFT_X86_DISPATCH
#define SPK_AVX2_FIRST(impl) \
  if (use_avx2()) return avx2::impl<T, W>(a...);
#else
#define SPK_AVX2_FIRST(impl)
#endif
#define SPK_ISA_DISPATCH(Name, impl) \
  template <typename T>              \
  struct Name {                      \
    template <int W>                 \
    struct K {                       \
      template <typename... A>       \
      static void run(A&&... a) {    \
        SPK_AVX2_FIRST(impl)         \
        generic::impl<T, W>(a...);   \
      }                              \
    };                               \
  };
SPK_ISA_DISPATCH(Interp, interp_impl)
SPK_ISA_DISPATCH(Gather, spread_gather_impl)
SPK_ISA_DISPATCH(Scatter, spread_scatter_impl)
#undef SPK_ISA_DISPATCH
#undef SPK_AVX2_FIRST

}  // namespace

template <typename T>
void setpts(const T* x, const T* y, const T* z, std::int64_t M, dims3 n, dims3 bs,
            std::int64_t* perm, std::int64_t* bin_offsets) {
  setpts_impl(x, y, z, M, n, bs, perm, bin_offsets);
}

template <typename T>
void spread(const T* x, const T* y, const T* z, const T* c, std::int64_t V, std::int64_t M,
            const std::int64_t* perm, const std::int64_t* bin_offsets, dims3 n, dims3 bs, int w,
            double beta, bool gather, T* fine) {
  const Horner<T> h = make_horner<T>(w, beta);
  if (gather)
    dispatch_width<Gather<T>::template K>(w, x, y, z, c, V, M, perm, bin_offsets, n, bs, h, fine);
  else
    dispatch_width<Scatter<T>::template K>(w, x, y, z, c, V, M, perm, n, h, fine);
}

template <typename T>
void interp(const T* x, const T* y, const T* z, const T* fine, std::int64_t V, std::int64_t M,
            const std::int64_t* perm, dims3 n, int w, double beta, T* c) {
  const Horner<T> h = make_horner<T>(w, beta);
  dispatch_width<Interp<T>::template K>(w, x, y, z, fine, V, M, perm, n, h, c);
}

#define SPK_INSTANTIATE(T)                                                                        \
  template void setpts<T>(const T*, const T*, const T*, std::int64_t, dims3, dims3, std::int64_t*, \
                          std::int64_t*);                                                          \
  template void spread<T>(const T*, const T*, const T*, const T*, std::int64_t, std::int64_t,      \
                          const std::int64_t*, const std::int64_t*, dims3, dims3, int, double,     \
                          bool, T*);                                                               \
  template void interp<T>(const T*, const T*, const T*, const T*, std::int64_t, std::int64_t,      \
                          const std::int64_t*, dims3, int, double, T*);
SPK_INSTANTIATE(float)
SPK_INSTANTIATE(double)
#undef SPK_INSTANTIATE

}  // namespace spk::cpu::nufft

#else  // SPK_NUFFT_HOT_PASS: the hot section, included twice above
// ---- interpolation (type 2) -------------------------------------------------------------

template <typename T, int W>
void interp_impl(const T* x, const T* y, const T* z, const T* fine, index_t V, index_t M,
                 const index_t* perm, dims3 n, const Horner<T>& h, T* c) {
  constexpr int S = stride_for(W);
  const index_t n1 = n[0], n2 = n[1], n3 = n[2];
  const index_t N = n1 * n2 * n3;
  const T* coef = h.coef.data();
  const int deg = h.deg;
#ifdef SPK_WITH_OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (index_t s = 0; s < M; ++s) {
    const index_t p = perm[s];
    const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W),
               a3 = m::axis_point(z[p], n3, W);
    alignas(64) T w1[S], w2[S], w3[S];
    m::weights_horner<T, S>(a1.u, W, deg, coef, w1);
    m::weights_horner<T, S>(a2.u, W, deg, coef, w2);
    m::weights_horner<T, S>(a3.u, W, deg, coef, w3);
    index_t i1[W], i2[W], i3[W];
    for (int j = 0, l1 = a1.l0, l2 = a2.l0, l3 = a3.l0; j < W; ++j) {
      i1[j] = l1 * n2;
      i2[j] = l2;
      i3[j] = l3;
      l1 = l1 + 1 == n1 ? 0 : l1 + 1;
      l2 = l2 + 1 == n2 ? 0 : l2 + 1;
      l3 = l3 + 1 == n3 ? 0 : l3 + 1;
    }
    // Sum the w^2 rows of 2S reals (interleaved complex along axis 3) weighted by w1*w2 into one
    // vector, then contract it with w3: one fixed-length FMA loop per row. Rows that wrap
    // around axis 3, or whose S-cell read would pass its end, are gathered into a buffer first.
    const bool contiguous = a3.l0 + S <= n3;
    for (index_t v = 0; v < V; ++v) {
      const T* g = fine + 2 * v * N;
      alignas(64) T acc[2 * S];
      for (int k = 0; k < 2 * S; ++k) acc[k] = T(0);
      for (int j1 = 0; j1 < W; ++j1) {
        for (int j2 = 0; j2 < W; ++j2) {
          const T f = w1[j1] * w2[j2];
          const T* row = g + 2 * ((i1[j1] + i2[j2]) * n3);
          alignas(64) T tmp[2 * S];
          const T* SPK_RESTRICT q;
          if (contiguous) {
            q = row + 2 * a3.l0;
          } else {
            for (int k = 0; k < S; ++k) {
              tmp[2 * k] = k < W ? row[2 * i3[k]] : T(0);
              tmp[2 * k + 1] = k < W ? row[2 * i3[k] + 1] : T(0);
            }
            q = tmp;
          }
          SPK_SIMD
          for (int k = 0; k < 2 * S; ++k) acc[k] += f * q[k];
        }
      }
      T sr = 0, si = 0;
      for (int k = 0; k < W; ++k) {
        sr += w3[k] * acc[2 * k];
        si += w3[k] * acc[2 * k + 1];
      }
      c[2 * (v * M + p)] = sr;
      c[2 * (v * M + p) + 1] = si;
    }
  }
}

// ---- spreading (type 1), gather -----------------------------------------------------------

// Bins along one axis whose points can reach the tile [a, a + len): a point in cell c has its
// support in [c - floor(w/2), c + ceil(w/2)], so c must lie in [a - ceil(w/2), a + len - 1 +
// floor(w/2)] (cyclically; one cell of margin each side). Ascending, without repeats.
void reach_bins(index_t a, index_t len, index_t n, index_t bs, int w, std::vector<index_t>& out) {
  out.clear();
  const index_t nb = (n + bs - 1) / bs;
  const index_t lo = a - (w + 1) / 2 - 1, hi = a + len - 1 + w / 2 + 1;
  for (index_t b = 0; b < nb; ++b) {
    const index_t c0 = b * bs, c1 = std::min(n, c0 + bs) - 1;
    bool hit = hi - lo + 1 >= n;
    for (index_t k = -n; k <= n && !hit; k += n) hit = c0 <= hi + k && c1 >= lo + k;
    if (hit) out.push_back(b);
  }
}

constexpr index_t kTileCells = 24;
inline index_t tile_factor(index_t bs) { return std::max<index_t>(1, kTileCells / bs); }

struct Piece {
  int i0, j0, cnt;  // tile cells i0 .. i0 + cnt - 1 take support offsets j0 .. j0 + cnt - 1
};

// The (at most two) runs where a support of w cells at tile offset o meets a tile of len cells.
inline int clip(index_t o, index_t len, index_t n, int w, Piece* p) {
  int np = 0;
  if (o < len) p[np++] = {static_cast<int>(o), 0, static_cast<int>(std::min<index_t>(len - o, w))};
  if (o + w > n)
    p[np++] = {0, static_cast<int>(n - o), static_cast<int>(std::min<index_t>(o + w - n, len))};
  return np;
}

template <typename T>
struct SortedPoint {
  std::int32_t l0[3];
  T u[3];
};

template <typename T, int W>
void spread_gather_impl(const T* x, const T* y, const T* z, const T* c, index_t V, index_t M,
                        const index_t* perm, const index_t* offsets, dims3 n, dims3 bs,
                        const Horner<T>& h, T* fine) {
  constexpr int S = stride_for(W);
  const index_t n1 = n[0], n2 = n[1], n3 = n[2];
  const index_t N = n1 * n2 * n3;
  const index_t nb1 = (n1 + bs[0] - 1) / bs[0], nb2 = (n2 + bs[1] - 1) / bs[1],
                nb3 = (n3 + bs[2] - 1) / bs[2];
  // A tile is F1 x F2 x F3 bins (about kTileCells cells a side): small bins keep the points
  // scanned per tile close to those that reach it, big tiles amortise each point's weights.
  const index_t F1 = tile_factor(bs[0]), F2 = tile_factor(bs[1]), F3 = tile_factor(bs[2]);
  const index_t TS1 = F1 * bs[0], TS2 = F2 * bs[1], TS3 = F3 * bs[2];
  const index_t nt1 = (n1 + TS1 - 1) / TS1, nt2 = (n2 + TS2 - 1) / TS2, nt3 = (n3 + TS3 - 1) / TS3;
  const index_t ntiles = nt1 * nt2 * nt3;
  const T* coef = h.coef.data();
  const int deg = h.deg;

  // Sorted copies: each point is visited by every tile it reaches, so its coordinates and values
  // are read from contiguous memory.
  std::vector<SortedPoint<T>> sp(static_cast<std::size_t>(M));
  std::vector<T> cs(static_cast<std::size_t>(2 * V * M));
#ifdef SPK_WITH_OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (index_t s = 0; s < M; ++s) {
    const index_t p = perm[s];
    const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W),
               a3 = m::axis_point(z[p], n3, W);
    sp[s] = {{static_cast<std::int32_t>(a1.l0), static_cast<std::int32_t>(a2.l0),
              static_cast<std::int32_t>(a3.l0)},
             {a1.u, a2.u, a3.u}};
    for (index_t v = 0; v < V; ++v) {
      cs[2 * (s * V + v)] = c[2 * (v * M + p)];
      cs[2 * (s * V + v) + 1] = c[2 * (v * M + p) + 1];
    }
  }

  // Tile buffer: interleaved complex rows along axis 3 with a halo of S cells on the left and 2S
  // on the right, so a support that is whole along axis 3 (one run, the common case) is added
  // with one fixed-length, vectorisable loop of 2S reals; what lands in the halo belongs to
  // neighbouring tiles (they compute it themselves) and is dropped.
#ifdef SPK_WITH_OPENMP
#pragma omp parallel
#endif
  {
    std::vector<index_t> r1, r2, r3;
    std::vector<T> buf;
#ifdef SPK_WITH_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (index_t tile = 0; tile < ntiles; ++tile) {
      const index_t t1 = tile / (nt2 * nt3), t2 = (tile / nt3) % nt2, t3 = tile % nt3;
      const index_t A1 = t1 * TS1, A2 = t2 * TS2, A3 = t3 * TS3;
      const index_t L1 = std::min(TS1, n1 - A1), L2 = std::min(TS2, n2 - A2),
                    L3 = std::min(TS3, n3 - A3);
      const index_t RL = 2 * (L3 + 3 * S);  // reals per row
      buf.assign(static_cast<std::size_t>(V * L1 * L2 * RL), T(0));
      reach_bins(A1, L1, n1, bs[0], W, r1);
      reach_bins(A2, L2, n2, bs[1], W, r2);
      reach_bins(A3, L3, n3, bs[2], W, r3);
      for (index_t q1 : r1)
        for (index_t q2 : r2)
          for (index_t q3 : r3) {
            const index_t bin = (q1 * nb2 + q2) * nb3 + q3;
            for (index_t s = offsets[bin]; s < offsets[bin + 1]; ++s) {
              const SortedPoint<T>& P = sp[s];
              index_t o1 = P.l0[0] - A1, o2 = P.l0[1] - A2, o3 = P.l0[2] - A3;
              if (o1 < 0) o1 += n1;
              if (o2 < 0) o2 += n2;
              if (o3 < 0) o3 += n3;
              if (!m::support_meets_tile(o1, L1, n1, W) || !m::support_meets_tile(o2, L2, n2, W) ||
                  !m::support_meets_tile(o3, L3, n3, W))
                continue;
              Piece p1[2], p2[2], p3[2];
              const int np1 = clip(o1, L1, n1, W, p1), np2 = clip(o2, L2, n2, W, p2),
                        np3 = clip(o3, L3, n3, W, p3);
              alignas(64) T w1[S], w2[S], w3[S];
              m::weights_horner<T, S>(P.u[0], W, deg, coef, w1);
              m::weights_horner<T, S>(P.u[1], W, deg, coef, w2);
              m::weights_horner<T, S>(P.u[2], W, deg, coef, w3);
              // One run along axis 3: its signed start relative to the tile (left halo if < 0).
              const bool one_run = np3 == 1;
              const index_t start3 = (o3 < L3 ? o3 : o3 - n3) + S;
              for (index_t v = 0; v < V; ++v) {
                const T cr = cs[2 * (s * V + v)], ci = cs[2 * (s * V + v) + 1];
                alignas(64) T cw[2 * S];
                for (int k = 0; k < S; ++k) {
                  cw[2 * k] = cr * w3[k];
                  cw[2 * k + 1] = ci * w3[k];
                }
                T* bv = buf.data() + v * L1 * L2 * RL;
                for (int k1 = 0; k1 < np1; ++k1)
                  for (int d1 = 0; d1 < p1[k1].cnt; ++d1) {
                    const int i1 = p1[k1].i0 + d1;
                    const T f1 = w1[p1[k1].j0 + d1];
                    for (int k2 = 0; k2 < np2; ++k2)
                      for (int d2 = 0; d2 < p2[k2].cnt; ++d2) {
                        const int i2 = p2[k2].i0 + d2;
                        const T f = f1 * w2[p2[k2].j0 + d2];
                        T* row = bv + (i1 * L2 + i2) * RL;
                        if (one_run) {
                          T* SPK_RESTRICT q = row + 2 * start3;
                          SPK_SIMD
                          for (int k = 0; k < 2 * S; ++k) q[k] += f * cw[k];
                        } else {
                          for (int k3 = 0; k3 < np3; ++k3) {
                            T* q = row + 2 * (p3[k3].i0 + S);
                            const T* cwp = cw + 2 * p3[k3].j0;
                            for (int k = 0; k < 2 * p3[k3].cnt; ++k) q[k] += f * cwp[k];
                          }
                        }
                      }
                  }
              }
            }
          }
      for (index_t v = 0; v < V; ++v)
        for (index_t i1 = 0; i1 < L1; ++i1)
          for (index_t i2 = 0; i2 < L2; ++i2) {
            T* out = fine + 2 * (v * N + ((A1 + i1) * n2 + (A2 + i2)) * n3 + A3);
            const T* row = buf.data() + ((v * L1 + i1) * L2 + i2) * RL + 2 * S;
            std::memcpy(out, row, sizeof(T) * 2 * L3);
          }
    }
  }
}

// ---- spreading (type 1), scatter baseline -----------------------------------------------

template <typename T, int W>
inline void scatter_point(const T* x, const T* y, const T* z, const T* c, index_t V, index_t M,
                          index_t p, dims3 n, const Horner<T>& h, T* grid, bool atomic) {
  constexpr int S = stride_for(W);
  const index_t n1 = n[0], n2 = n[1], n3 = n[2];
  const index_t N = n1 * n2 * n3;
  const auto a1 = m::axis_point(x[p], n1, W), a2 = m::axis_point(y[p], n2, W),
             a3 = m::axis_point(z[p], n3, W);
  alignas(64) T w1[S], w2[S], w3[S];
  m::weights_horner<T, S>(a1.u, W, h.deg, h.coef.data(), w1);
  m::weights_horner<T, S>(a2.u, W, h.deg, h.coef.data(), w2);
  m::weights_horner<T, S>(a3.u, W, h.deg, h.coef.data(), w3);
  index_t i1[W], i2[W], i3[W];
  for (int j = 0, l1 = a1.l0, l2 = a2.l0, l3 = a3.l0; j < W; ++j) {
    i1[j] = l1;
    i2[j] = l2;
    i3[j] = l3;
    l1 = l1 + 1 == n1 ? 0 : l1 + 1;
    l2 = l2 + 1 == n2 ? 0 : l2 + 1;
    l3 = l3 + 1 == n3 ? 0 : l3 + 1;
  }
  for (index_t v = 0; v < V; ++v) {
    const T cr = c[2 * (v * M + p)], ci = c[2 * (v * M + p) + 1];
    T* g = grid + 2 * v * N;
    for (int j1 = 0; j1 < W; ++j1)
      for (int j2 = 0; j2 < W; ++j2) {
        const T f = w1[j1] * w2[j2];
        const T xr = cr * f, xi = ci * f;
        T* row = g + 2 * ((i1[j1] * n2 + i2[j2]) * n3);
        for (int k = 0; k < W; ++k) {
          T* q = row + 2 * i3[k];
          const T ar = xr * w3[k], ai = xi * w3[k];
          if (atomic) {
#ifdef SPK_WITH_OPENMP
#pragma omp atomic
#endif
            q[0] += ar;
#ifdef SPK_WITH_OPENMP
#pragma omp atomic
#endif
            q[1] += ai;
          } else {
            q[0] += ar;
            q[1] += ai;
          }
        }
      }
  }
}

template <typename T, int W>
void spread_scatter_impl(const T* x, const T* y, const T* z, const T* c, index_t V, index_t M,
                         const index_t* perm, dims3 n, const Horner<T>& h, T* fine) {
  const index_t total = 2 * V * n[0] * n[1] * n[2];
  const int nt = max_threads();
  const bool private_grids =
      static_cast<double>(nt - 1) * static_cast<double>(total) * sizeof(T) <= kScatterPrivateBytes;
  std::vector<std::vector<T>> priv(private_grids ? std::max(0, nt - 1) : 0);
#ifdef SPK_WITH_OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (index_t i = 0; i < total; ++i) fine[i] = T(0);
  if (!private_grids) {
#ifdef SPK_WITH_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t s = 0; s < M; ++s) scatter_point<T, W>(x, y, z, c, V, M, perm[s], n, h, fine, true);
    return;
  }
#ifdef SPK_WITH_OPENMP
#pragma omp parallel num_threads(nt)
#endif
  {
    const int t = thread_id(), T_ = num_threads();
    T* grid = fine;
    if (t > 0) {
      priv[t - 1].assign(static_cast<std::size_t>(total), T(0));
      grid = priv[t - 1].data();
    }
    const index_t s0 = M * t / T_, s1 = M * (t + 1) / T_;
    for (index_t s = s0; s < s1; ++s) scatter_point<T, W>(x, y, z, c, V, M, perm[s], n, h, grid, false);
  }
  if (!priv.empty()) {
#ifdef SPK_WITH_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (index_t i = 0; i < total; ++i) {
      T acc = fine[i];
      for (auto& g : priv)
        if (!g.empty()) acc += g[i];
      fine[i] = acc;
    }
  }
}

#endif  // SPK_NUFFT_HOT_PASS
