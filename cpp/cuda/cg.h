// Launchers for the CUDA conjugate gradient vector kernels (plain C++: raw device pointers).
// Vectors are real views of n reals (2n for complex); `state` is the device double[16] of
// spk/cg.h, `hist` the device residual history, `work` a device scratch of kCgWorkDoubles.
#pragma once
#include <cstdint>

namespace spk::cuda {

constexpr int kCgMaxBlocks = 1024;
constexpr int kCgWorkDoubles = 2 * kCgMaxBlocks;

void cg_dot(std::uintptr_t a, std::uintptr_t b, std::int64_t n, bool cplx, bool single, std::uintptr_t state,
            std::uintptr_t hist, int which, std::uintptr_t work, std::uintptr_t stream);
void cg_update_xr(std::uintptr_t x, std::uintptr_t r, std::uintptr_t p, std::uintptr_t q, std::int64_t n,
                  bool single, std::uintptr_t state, std::uintptr_t hist, std::uintptr_t work,
                  std::uintptr_t stream);
void cg_update_p(std::uintptr_t p, std::uintptr_t z, std::int64_t n, bool single, std::uintptr_t state,
                 std::uintptr_t stream);
void cg_residual(std::uintptr_t r, std::uintptr_t b, std::uintptr_t q, std::int64_t n, bool single,
                 std::uintptr_t stream);

}  // namespace spk::cuda
