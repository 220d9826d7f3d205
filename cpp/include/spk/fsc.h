// Fourier shell correlation: the per-voxel math shared by the C++ CPU loop and the CUDA kernel.
//
// The kernels walk the half spectrum produced by a real-to-complex FFT, shape (nz, ny, nxh) with
// nxh = nx/2 + 1. A voxel (iz, iy, ix) has frequency indices (kz, ky, kx) in numpy.fft.fftfreq
// order along z and y and kx = ix along x. Its shell is round(|k * a|), where a_d is
// 1 / (n_d * voxel_size * shell_width): shells are centred on multiples of the shell width, and
// everything past the last shell (the corners beyond Nyquist) is dropped.
#pragma once

#include <cmath>

#include "spk/common.h"

namespace spk {

// Each shell accumulates four sums, in this order, in double precision.
constexpr int kFscNum = 0;    // sum Re(F1 conj(F2))
constexpr int kFscPow1 = 1;   // sum |F1|^2
constexpr int kFscPow2 = 2;   // sum |F2|^2
constexpr int kFscCount = 3;  // number of voxels of the full spectrum
constexpr int kFscSums = 4;

// Products and sums with explicit rounding on the device: nvcc would otherwise contract
// them into FMAs, and a voxel sitting on a shell boundary could land in a different shell than
// on the CPU and in the NumPy reference.
SPK_HD double fsc_mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
SPK_HD double fsc_add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// Signed frequency index of array index i along an axis of length n (numpy.fft.fftfreq * n).
SPK_HD index_t fsc_freq_index(index_t i, index_t n) { return i <= (n - 1) / 2 ? i : i - n; }

// Shell of half-spectrum voxel (iz, iy, ix), or -1 past the last shell.
SPK_HD int fsc_shell_index(index_t iz, index_t iy, index_t ix, index_t nz, index_t ny, double az,
                           double ay, double ax, int n_shells) {
  const double tz = fsc_mul(static_cast<double>(fsc_freq_index(iz, nz)), az);
  const double ty = fsc_mul(static_cast<double>(fsc_freq_index(iy, ny)), ay);
  const double tx = fsc_mul(static_cast<double>(ix), ax);
  const double r2 = fsc_add(fsc_add(fsc_mul(tz, tz), fsc_mul(ty, ty)), fsc_mul(tx, tx));
  const double shell = std::floor(fsc_add(std::sqrt(r2), 0.5));
  return shell < static_cast<double>(n_shells) ? static_cast<int>(shell) : -1;
}

// How many voxels of the full spectrum the half-spectrum column ix stands for: the columns
// kx = 0 and (for even nx) kx = nx/2 are their own Hermitian mirrors, every other one has a twin.
SPK_HD double fsc_multiplicity(index_t ix, index_t nx) {
  return (ix == 0 || 2 * ix == nx) ? 1.0 : 2.0;
}

// The three products of one voxel, already weighted by its multiplicity.
SPK_HD void fsc_voxel_terms(double re1, double im1, double re2, double im2, double mult,
                            double* num, double* p1, double* p2) {
  *num = mult * (re1 * re2 + im1 * im2);
  *p1 = mult * (re1 * re1 + im1 * im1);
  *p2 = mult * (re2 * re2 + im2 * im2);
}

}  // namespace spk

namespace spk {

// CPU (OpenMP) shell accumulation over two half spectra (complex64 when `single`, else
// complex128), both C-contiguous of shape (nz, ny, nx/2 + 1). Writes sums[n_shells][kFscSums].
// Bitwise reproducible whatever the thread count: each z-plane is summed sequentially into its
// own partial row, and the rows are added in plane order.
void fsc_accumulate_cpu(const void* f1, const void* f2, bool single, index_t nz, index_t ny,
                        index_t nx, double az, double ay, double ax, int n_shells, double* sums);

}  // namespace spk
