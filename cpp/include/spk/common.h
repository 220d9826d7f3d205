// Shared definitions for per-element math used by both the CPU loops and the CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define SPK_HD __host__ __device__ __forceinline__
#define SPK_DEVICE __device__ __forceinline__
#else
#define SPK_HD inline
#define SPK_DEVICE inline
#endif

#include <cstdint>

namespace spk {
using index_t = std::int64_t;
}  // namespace spk
