// Error checking for CUDA runtime calls and kernel launches: every failure becomes a
// std::runtime_error carrying CUDA's own error string (pybind11 maps it to RuntimeError).
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define SPK_CUDA_CHECK(expr)                                                                  \
  do {                                                                                        \
    cudaError_t spk_err_ = (expr);                                                            \
    if (spk_err_ != cudaSuccess)                                                              \
      throw std::runtime_error(std::string("spkernels CUDA error: ") + #expr + ": " +         \
                               cudaGetErrorName(spk_err_) + " (" + cudaGetErrorString(spk_err_) + \
                               ")");                                                          \
  } while (0)

// After a <<<...>>> launch: catches bad configurations at once; execution errors surface at the
// next synchronising call, which is checked too.
#define SPK_CUDA_CHECK_LAUNCH() SPK_CUDA_CHECK(cudaGetLastError())
