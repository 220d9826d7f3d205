// Launcher for the CUDA Fourier shell correlation kernel (plain C++: typed device pointers).
#pragma once
#include <complex>
#include <cstdint>

namespace spk::cuda {

// Accumulates the per-shell sums (see spk/fsc.h) of two half spectra on the device. T is float
// (complex64 spectra) or double (complex128). Deterministic: per-warp shared-memory histograms
// merged in lane order, per-block partial rows, then a fixed-order sum over blocks.
template <class T>
struct FscLaunch {
  const std::complex<T>* f1 = nullptr;  // C-contiguous (nz, ny, nx/2+1)
  const std::complex<T>* f2 = nullptr;
  std::int64_t nz = 0, ny = 0, nx = 0;  // the real grid's sizes
  double az = 0, ay = 0, ax = 0;        // frequency scales per axis (spk/fsc.h)
  int n_shells = 0;
  double* sums = nullptr;               // (n_shells, 4), overwritten
  std::uintptr_t stream = 0;            // cudaStream_t as an integer
};
void fsc_accumulate(const FscLaunch<float>& a);
void fsc_accumulate(const FscLaunch<double>& a);

}  // namespace spk::cuda
