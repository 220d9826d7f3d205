// CUDA launchers of the 3-D NUFFT (binning, spreading, interpolation), callable from plain C++.
// Each takes an argument struct of typed device pointers; T is float (float32 points,
// complex64 values) or double (float64, complex128). `stream` is a cudaStream_t as an integer
// (0: the default stream).
#pragma once
#include <complex>
#include <cstdint>

namespace spk::cuda {

// Bins the M points and stable-sorts them by bin (radix sort of the bin ids, ties by index).
template <class T>
struct NufftSetptsLaunch {
  const T* x = nullptr;  // (M,) each, folded into [-pi, pi)
  const T* y = nullptr;
  const T* z = nullptr;
  std::int64_t M = 0;
  std::int64_t n1 = 0, n2 = 0, n3 = 0;     // fine grid
  std::int64_t bs1 = 0, bs2 = 0, bs3 = 0;  // bin size
  std::int64_t* perm = nullptr;            // (M,) out
  std::int64_t* bin_offsets = nullptr;     // (nbins + 1,) out
  std::uintptr_t stream = 0;
};

// What spreading and interpolation share: the points in their sorted order, the fine grid and
// the kernel.
template <class T>
struct NufftKernelArgs {
  const T* x = nullptr;  // (M,) each, folded into [-pi, pi)
  const T* y = nullptr;
  const T* z = nullptr;
  std::int64_t V = 1, M = 0;           // vectors, points
  const std::int64_t* perm = nullptr;  // the sorted order from nufft_setpts
  std::int64_t n1 = 0, n2 = 0, n3 = 0; // fine grid
  int w = 0;                           // kernel width in cells
  double beta = 0;                     // kernel shape (spk/nufft.h kernel_value)
  std::uintptr_t stream = 0;
};

// Type-1 spreading of c (V, M) into fine (V, n1, n2, n3), which is fully overwritten.
// gather: one block per (bin = tile, vector), no float atomics, bitwise deterministic; needs
// bs1 * bs2 <= 1024 and bs3 <= 16. Otherwise (scatter): one thread per point, atomicAdd.
template <class T>
struct NufftSpreadLaunch : NufftKernelArgs<T> {
  const std::complex<T>* c = nullptr;  // (V, M)
  const std::int64_t* bin_offsets = nullptr;
  std::int64_t bs1 = 0, bs2 = 0, bs3 = 0;
  bool gather = true;
  std::complex<T>* fine = nullptr;  // (V, n1, n2, n3) out
};

// Type-2 interpolation: c (V, M) from fine (V, n1, n2, n3); one thread per point in perm order.
template <class T>
struct NufftInterpLaunch : NufftKernelArgs<T> {
  const std::complex<T>* fine = nullptr;
  std::complex<T>* c = nullptr;  // (V, M) out
};

void nufft_setpts(const NufftSetptsLaunch<float>& a);
void nufft_setpts(const NufftSetptsLaunch<double>& a);
void nufft_spread(const NufftSpreadLaunch<float>& a);
void nufft_spread(const NufftSpreadLaunch<double>& a);
void nufft_interp(const NufftInterpLaunch<float>& a);
void nufft_interp(const NufftInterpLaunch<double>& a);

}  // namespace spk::cuda
