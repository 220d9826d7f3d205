// Launcher for the CUDA Fourier shell correlation kernel (plain C++: raw device pointers).
#pragma once
#include <cstdint>

namespace spk::cuda {

// Accumulates the per-shell sums (see spk/fsc.h) of two half spectra on the device.
// f1, f2: complex64 (single) or complex128, C-contiguous (nz, ny, nx/2+1).
// sums: device double[n_shells * 4], overwritten. Deterministic: per-warp shared-memory
// histograms merged in lane order, per-block partial rows, then a fixed-order sum over blocks.
void fsc_accumulate(std::uintptr_t f1, std::uintptr_t f2, bool single, std::int64_t nz,
                    std::int64_t ny, std::int64_t nx, double az, double ay, double ax, int n_shells,
                    std::uintptr_t sums, std::uintptr_t stream);

}  // namespace spk::cuda
