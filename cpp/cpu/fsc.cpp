// Fourier shell correlation on the CPU: one pass over the two half spectra.
#include "spk/fsc.h"

#include <complex>
#include <stdexcept>
#include <vector>

namespace spk {
namespace {

template <typename R>
void accumulate(const std::complex<R>* f1, const std::complex<R>* f2, index_t nz, index_t ny,
                index_t nx, double az, double ay, double ax, int n_shells, double* sums) {
  const index_t nxh = nx / 2 + 1;
  const index_t row = static_cast<index_t>(n_shells) * kFscSums;
  // One partial histogram per z-plane: the result does not depend on how planes are shared
  // among threads.
  std::vector<double> partial(static_cast<std::size_t>(nz * row), 0.0);
#pragma omp parallel for schedule(static)
  for (index_t iz = 0; iz < nz; ++iz) {
    double* h = partial.data() + iz * row;
    for (index_t iy = 0; iy < ny; ++iy) {
      const index_t base = (iz * ny + iy) * nxh;
      // Neighbouring voxels of a row mostly share a shell: sum runs in registers and flush
      // when the shell changes, instead of a load-add-store chain through memory per voxel.
      int cur = -1;
      double acc[kFscSums] = {0.0, 0.0, 0.0, 0.0};
      for (index_t ix = 0; ix < nxh; ++ix) {
        const int s = fsc_shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells);
        if (s != cur) {
          if (cur >= 0)
            for (int c = 0; c < kFscSums; ++c) h[cur * kFscSums + c] += acc[c];
          cur = s;
          for (int c = 0; c < kFscSums; ++c) acc[c] = 0.0;
        }
        if (s < 0) continue;
        const std::complex<R> a = f1[base + ix];
        const std::complex<R> b = f2[base + ix];
        const double mult = fsc_multiplicity(ix, nx);
        double num, p1, p2;
        fsc_voxel_terms(a.real(), a.imag(), b.real(), b.imag(), mult, &num, &p1, &p2);
        acc[kFscNum] += num;
        acc[kFscPow1] += p1;
        acc[kFscPow2] += p2;
        acc[kFscCount] += mult;
      }
      if (cur >= 0)
        for (int c = 0; c < kFscSums; ++c) h[cur * kFscSums + c] += acc[c];
    }
  }
#pragma omp parallel for schedule(static)
  for (index_t j = 0; j < row; ++j) {
    double acc = 0.0;
    for (index_t iz = 0; iz < nz; ++iz) acc += partial[iz * row + j];
    sums[j] = acc;
  }
}

}  // namespace

void fsc_accumulate_cpu(const void* f1, const void* f2, bool single, index_t nz, index_t ny,
                        index_t nx, double az, double ay, double ax, int n_shells, double* sums) {
  if (nz <= 0 || ny <= 0 || nx <= 0 || n_shells <= 0)
    throw std::invalid_argument("fsc: sizes and `n_shells` must be positive");
  if (single)
    accumulate(static_cast<const std::complex<float>*>(f1), static_cast<const std::complex<float>*>(f2), nz,
               ny, nx, az, ay, ax, n_shells, sums);
  else
    accumulate(static_cast<const std::complex<double>*>(f1), static_cast<const std::complex<double>*>(f2),
               nz, ny, nx, az, ay, ax, n_shells, sums);
}

}  // namespace spk
