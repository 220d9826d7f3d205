// CUDA launchers of the 3-D NUFFT (binning, spreading, interpolation), callable from plain C++:
// device pointers as integers, sizes, prec = 4 (float32 points, complex64 values) or 8 (float64,
// complex128), and a CUDA stream. Complex arrays are interleaved (re, im).
#pragma once
#include <cstdint>

namespace spk::cuda {

// Bins the M points and stable-sorts them by bin (radix sort of the bin ids, ties by index):
// writes perm (int64, M) and bin_offsets (int64, nbins + 1).
void nufft_setpts(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::int64_t M, std::int64_t n1,
                  std::int64_t n2, std::int64_t n3, std::int64_t bs1, std::int64_t bs2, std::int64_t bs3,
                  int prec, std::uintptr_t perm, std::uintptr_t bin_offsets, std::uintptr_t stream);

// Type-1 spreading of c (V, M) into fine (V, n1, n2, n3), which is fully overwritten.
// gather: one block per (bin = tile, vector), no float atomics, bitwise deterministic; needs
// bs1 * bs2 <= 1024 and bs3 <= 16. Otherwise (scatter): one thread per point, atomicAdd.
void nufft_spread(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t c, std::int64_t V,
                  std::int64_t M, std::uintptr_t perm, std::uintptr_t bin_offsets, std::int64_t n1,
                  std::int64_t n2, std::int64_t n3, std::int64_t bs1, std::int64_t bs2, std::int64_t bs3,
                  int w, double beta, int prec, bool gather, std::uintptr_t fine, std::uintptr_t stream);

// Type-2 interpolation: c (V, M) from fine (V, n1, n2, n3); one thread per point in perm order.
void nufft_interp(std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t fine, std::int64_t V,
                  std::int64_t M, std::uintptr_t perm, std::int64_t n1, std::int64_t n2, std::int64_t n3,
                  int w, double beta, int prec, std::uintptr_t c, std::uintptr_t stream);

}  // namespace spk::cuda
