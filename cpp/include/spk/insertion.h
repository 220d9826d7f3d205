// Fourier insertion with a Kaiser-Bessel blob: the per-voxel / per-pair math shared by the
// C++ CPU loops and the CUDA kernels (the Numba twin is backends/numba_math/insertion.py).
//
// Geometry: images are centred 2-D spectra (n, N, N), interleaved (re, im); pixel [r, c] at
// frequency (u, v) = (c - h, r - h), h = N / 2. The volume is the half volume (N, N, h + 1),
// voxel [iz, iy, ix] at k = (ix, iy - h, iz - h). Rotation R (row-major 3x3) maps a voxel into
// an image, p = R k; pixel (u, v) lies at R^T (u, v, 0). A (voxel, pixel) pair carries the blob
// weight table[round(d2 * scale)] when d2 = du^2 + (dv^2 + pz^2) < radius^2 (du = u - px,
// dv = v - py), the voxel is inside the sphere |k|^2 <= max_freq2 and the pixel is on the image.
// Insertion adds w*c*X into the voxel and w*c^2 into its weight (c the CTF, 1 without);
// extraction, its adjoint, gives out[pixel] = c * sum w * V[k].
#pragma once

#include <cmath>

#include "spk/common.h"

namespace spk {

// Table entry of squared distance d2 (nearest sample of the r^2-sampled table).
template <typename R>
SPK_HD int insertion_blob_index(R d2, R scale) {
  return static_cast<int>(d2 * scale + R(0.5));
}

// Integer range [floor(x1) - 1, floor(x2) + 1] clipped to [lo, hi] (widened by one on each side
// so that rounding never drops a pair).
template <typename R>
SPK_HD void insertion_widened_range(R x1, R x2, int lo, int hi, int* a, int* b) {
  const int s = static_cast<int>(std::floor(x1)) - 1;
  const int e = static_cast<int>(std::floor(x2)) + 1;
  *a = s < lo ? lo : s;
  *b = e > hi ? hi : e;
}

// Integer range [a, b] around coordinate p holding every index within radius, widened by one on
// each side so that rounding never drops a pair, clipped to [lo, hi].
template <typename R>
SPK_HD void insertion_axis_window(R p, R radius, int lo, int hi, int* a, int* b) {
  insertion_widened_range(p - radius, p + radius, lo, hi, a, b);
}

// Integer range of x in [lo, hi] where |a x + b| < radius can hold (widened by one); empty
// when *s > *e.
template <typename R>
SPK_HD void insertion_row_interval(R a, R b, R radius, int lo, int hi, int* s, int* e) {
  if (std::fabs(a) < R(1e-12)) {
    if (std::fabs(b) < radius + R(1e-9)) {
      *s = lo;
      *e = hi;
    } else {
      *s = lo;
      *e = lo - 1;
    }
    return;
  }
  R x1 = (-radius - b) / a;
  R x2 = (radius - b) / a;
  if (x1 > x2) {
    R t = x1;
    x1 = x2;
    x2 = t;
  }
  insertion_widened_range(x1, x2, lo, hi, s, e);
}

// The axis (0: x, 1: y, 2: z of k) along which the plane normal (n0, n1, n2) has its largest
// component (the first of equal ones): a column of voxels along it crosses the plane's slab of
// half-width radius in at most 2 radius / |n_axis| + 3 <= 2 sqrt(3) radius + 3 voxels.
template <typename R>
SPK_HD int insertion_dominant_axis(R n0, R n1, R n2) {
  const R a0 = std::fabs(n0), a1 = std::fabs(n1), a2 = std::fabs(n2);
  if (a0 >= a1 && a0 >= a2) return 0;
  return a1 >= a2 ? 1 : 2;
}

// Squared distance of pixel (u, v) from the voxel's image point (px, py, pz), or -1 outside
// the blob.
template <typename R>
SPK_HD R insertion_pair(R px, R py, R pz, R u, R v, R radius2) {
  const R du = u - px;
  const R dv = v - py;
  const R d2 = du * du + (dv * dv + pz * pz);
  return d2 < radius2 ? d2 : R(-1);
}

// One voxel's sums over one projection: *sre, *sim = sum w c X, *sw = sum w c^2. img: the
// projection's interleaved (N, N) spectrum; ctf: its (N, N) CTF or nullptr; r: its rotation.
template <typename R, typename T>
SPK_HD bool insertion_gather_voxel(const R* img, const R* ctf, const R* r, R kx, R ky, R kz, const T* table,
                                   R scale, R radius, int h, R* sre, R* sim, R* sw) {
  const R pz = r[6] * kx + r[7] * ky + r[8] * kz;
  if (std::fabs(pz) >= radius) return false;
  const R px = r[0] * kx + r[1] * ky + r[2] * kz;
  const R py = r[3] * kx + r[4] * ky + r[5] * kz;
  const R radius2 = radius * radius;
  const R pz2 = pz * pz;
  int v0, v1, u0, u1;
  // rows within the blob's disc at this depth, then per row the pixels within its chord (both
  // widened by one: the exact test is insertion_pair's)
  insertion_axis_window(py, std::sqrt(radius2 - pz2), -h, h - 1, &v0, &v1);
  const int N = 2 * h;
  R a = 0, b = 0, c2 = 0;
  for (int v = v0; v <= v1; ++v) {
    const R dv = R(v) - py;
    const R rest = radius2 - (dv * dv + pz2);
    if (rest <= R(0)) continue;
    insertion_axis_window(px, std::sqrt(rest), -h, h - 1, &u0, &u1);
    for (int u = u0; u <= u1; ++u) {
      const R d2 = insertion_pair(px, py, pz, static_cast<R>(u), static_cast<R>(v), radius2);
      if (d2 < R(0)) continue;
      const R w = static_cast<R>(table[insertion_blob_index(d2, scale)]);
      const index_t pix = static_cast<index_t>(v + h) * N + (u + h);
      const R xr = img[2 * pix], xi = img[2 * pix + 1];
      if (ctf) {
        const R c = ctf[pix];
        const R wc = w * c;
        a += wc * xr;
        b += wc * xi;
        c2 += wc * c;
      } else {
        a += w * xr;
        b += w * xi;
        c2 += w;
      }
    }
  }
  *sre = a;
  *sim = b;
  *sw = c2;
  return true;
}

// The walk over pixel (u, v)'s blob window: every voxel of the half volume around the pixel's
// 3-D point R^T (u, v, 0) (z, then y, then x ascending) inside the sphere |k|^2 <= max_freq2 and
// the blob gets visit(k, w), k its flat index in the (N, N, h + 1) half volume and w the blob
// weight table[...]. The scatter's visit adds w c X into the voxel; the extraction's sums w V[k].
template <typename R, typename T, typename Visit>
SPK_HD void insertion_pixel_walk(const R* __restrict__ r, R u, R v, const T* __restrict__ table, R scale, R radius,
                                 double max_freq2, int h, Visit&& visit) {
  const R qx = r[0] * u + r[3] * v, qy = r[1] * u + r[4] * v, qz = r[2] * u + r[5] * v;
  const R radius2 = radius * radius;
  const index_t N = 2 * h, nxh = h + 1;
  int z0, z1, y0, y1, x0, x1;
  insertion_axis_window(qz, radius, -h, h - 1, &z0, &z1);
  insertion_axis_window(qy, radius, -h, h - 1, &y0, &y1);
  insertion_axis_window(qx, radius, 0, h, &x0, &x1);
  for (int kz = z0; kz <= z1; ++kz)
    for (int ky = y0; ky <= y1; ++ky)
      for (int kx = x0; kx <= x1; ++kx) {
        if (static_cast<double>(kx * kx + ky * ky + kz * kz) > max_freq2) continue;
        const R fx = R(kx), fy = R(ky), fz = R(kz);
        const R pz = r[6] * fx + r[7] * fy + r[8] * fz;
        if (std::fabs(pz) >= radius) continue;
        const R px = r[0] * fx + r[1] * fy + r[2] * fz;
        const R py = r[3] * fx + r[4] * fy + r[5] * fz;
        const R d2 = insertion_pair(px, py, pz, u, v, radius2);
        if (d2 < R(0)) continue;
        visit((static_cast<index_t>(kz + h) * N + (ky + h)) * nxh + kx,
              static_cast<R>(table[insertion_blob_index(d2, scale)]));
      }
}

// Extraction of one pixel (before its CTF): *sre, *sim = sum w V[k] over its blob window; vol
// is the interleaved (N, N, h + 1) half volume.
template <typename R, typename T>
SPK_HD void insertion_extract_pixel(const R* __restrict__ vol, const R* r, R u, R v, const T* table, R scale,
                                    R radius, double max_freq2, int h, R* sre, R* sim) {
  R a = 0, b = 0;
  insertion_pixel_walk(r, u, v, table, scale, radius, max_freq2, h, [&](index_t k, R w) {
    a += w * vol[2 * k];
    b += w * vol[2 * k + 1];
  });
  *sre = a;
  *sim = b;
}

// CPU (OpenMP) insertion, in place into vol (interleaved complex, (N, N, N/2+1)) and weights.
// single: float32 data (complex64 images/volume, float32 ctf/rotations/table), else float64.
// ctf may be null. gather: each thread owns whole z-planes and walks the projections in order
// (deterministic for any thread count); scatter: pixel-driven with atomic adds.
void insertion_insert_cpu(const void* images, const void* ctf, const void* rotations, const void* table,
                          bool single, index_t n, index_t N, double scale, double radius, double max_freq2,
                          void* volume, void* weights, bool gather);

// CPU extraction (adjoint of the volume part): out (n, N, N) interleaved complex.
void insertion_extract_cpu(const void* volume, const void* ctf, const void* rotations, const void* table,
                           bool single, index_t n, index_t N, double scale, double radius, double max_freq2,
                           void* out);

}  // namespace spk
