// Fourier insertion on the CPU: the plane-owning gather, the atomic scatter baseline and the
// extraction (adjoint), all over the per-pair math of spk/insertion.h.
#include "spk/insertion.h"

#include <cmath>
#include <stdexcept>

namespace spk {
namespace {

template <typename R>
void gather(const R* images, const R* ctf, const R* rot, const R* table, index_t n, index_t N, R scale, R radius,
            double max_freq2, R* vol, R* wts) {
  const int h = static_cast<int>(N / 2);
  const index_t nxh = h + 1;
  const index_t plane = N * N;
  // Thread owns z-plane iz; for each projection in order, each row visits only the x-interval
  // of the slab |p_z| < radius, and each voxel is written once per projection.
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t iz = 0; iz < N; ++iz) {
    const int kz = static_cast<int>(iz) - h;
    for (index_t j = 0; j < n; ++j) {
      const R* r = rot + 9 * j;
      const R* img = images + 2 * j * plane;
      const R* c = ctf ? ctf + j * plane : nullptr;
      for (index_t iy = 0; iy < N; ++iy) {
        const int ky = static_cast<int>(iy) - h;
        const double rest = max_freq2 - static_cast<double>(ky * ky + kz * kz);
        if (rest < 0) continue;
        int xmax = static_cast<int>(std::floor(std::sqrt(rest)));
        if (xmax > h) xmax = h;
        int x0, x1;
        insertion_row_interval<R>(r[6], r[7] * R(ky) + r[8] * R(kz), radius, 0, xmax, &x0, &x1);
        R* vrow = vol + 2 * ((iz * N + iy) * nxh);
        R* wrow = wts + (iz * N + iy) * nxh;
        for (int ix = x0; ix <= x1; ++ix) {
          if (static_cast<double>(ix * ix + ky * ky + kz * kz) > max_freq2) continue;
          R a, b, w;
          if (!insertion_gather_voxel<R, R>(img, c, r, R(ix), R(ky), R(kz), table, scale, radius, h, &a, &b, &w))
            continue;
          vrow[2 * ix] += a;
          vrow[2 * ix + 1] += b;
          wrow[ix] += w;
        }
      }
    }
  }
}

template <typename R>
void scatter(const R* images, const R* ctf, const R* rot, const R* table, index_t n, index_t N, R scale, R radius,
             double max_freq2, R* vol, R* wts) {
  const int h = static_cast<int>(N / 2);
  const index_t plane = N * N;
#pragma omp parallel for schedule(dynamic, 4) collapse(2)
  for (index_t j = 0; j < n; ++j) {
    for (index_t row = 0; row < N; ++row) {
      const R* r = rot + 9 * j;
      for (index_t col = 0; col < N; ++col) {
        const index_t pix = j * plane + row * N + col;
        const R xr = images[2 * pix], xi = images[2 * pix + 1];
        const R c = ctf ? ctf[pix] : R(1);
        insertion_pixel_walk(r, R(col - h), R(row - h), table, scale, radius, max_freq2, h, [&](index_t k, R t) {
          const R w = t * c;
#pragma omp atomic
          vol[2 * k] += w * xr;
#pragma omp atomic
          vol[2 * k + 1] += w * xi;
#pragma omp atomic
          wts[k] += w * c;
        });
      }
    }
  }
}

template <typename R>
void extract(const R* vol, const R* ctf, const R* rot, const R* table, index_t n, index_t N, R scale, R radius,
             double max_freq2, R* out) {
  const int h = static_cast<int>(N / 2);
#pragma omp parallel for schedule(static)
  for (index_t t = 0; t < n * N; ++t) {
    const index_t j = t / N, row = t % N;
    for (index_t col = 0; col < N; ++col) {
      R a, b;
      insertion_extract_pixel(vol, rot + 9 * j, R(col - h), R(row - h), table, scale, radius, max_freq2, h, &a, &b);
      const index_t pix = (j * N + row) * N + col;
      const R c = ctf ? ctf[pix] : R(1);
      out[2 * pix] = c * a;
      out[2 * pix + 1] = c * b;
    }
  }
}

void check(index_t n, index_t N, double radius) {
  if (n < 0 || N < 4 || N % 2) throw std::invalid_argument("insertion: `N` must be even and >= 4, `n` >= 0");
  if (!(radius > 0)) throw std::invalid_argument("insertion: `radius` must be positive");
}

}  // namespace

void insertion_insert_cpu(const void* images, const void* ctf, const void* rotations, const void* table,
                          bool single, index_t n, index_t N, double scale, double radius, double max_freq2,
                          void* volume, void* weights, bool gather_method) {
  check(n, N, radius);
  if (single) {
    auto fn = gather_method ? gather<float> : scatter<float>;
    fn(static_cast<const float*>(images), static_cast<const float*>(ctf), static_cast<const float*>(rotations),
       static_cast<const float*>(table), n, N, static_cast<float>(scale), static_cast<float>(radius), max_freq2,
       static_cast<float*>(volume), static_cast<float*>(weights));
  } else {
    auto fn = gather_method ? gather<double> : scatter<double>;
    fn(static_cast<const double*>(images), static_cast<const double*>(ctf), static_cast<const double*>(rotations),
       static_cast<const double*>(table), n, N, scale, radius, max_freq2, static_cast<double*>(volume),
       static_cast<double*>(weights));
  }
}

void insertion_extract_cpu(const void* volume, const void* ctf, const void* rotations, const void* table,
                           bool single, index_t n, index_t N, double scale, double radius, double max_freq2,
                           void* out) {
  check(n, N, radius);
  if (single)
    extract<float>(static_cast<const float*>(volume), static_cast<const float*>(ctf),
                   static_cast<const float*>(rotations), static_cast<const float*>(table), n, N,
                   static_cast<float>(scale), static_cast<float>(radius), max_freq2, static_cast<float*>(out));
  else
    extract<double>(static_cast<const double*>(volume), static_cast<const double*>(ctf),
                    static_cast<const double*>(rotations), static_cast<const double*>(table), n, N, scale, radius,
                    max_freq2, static_cast<double*>(out));
}

}  // namespace spk
