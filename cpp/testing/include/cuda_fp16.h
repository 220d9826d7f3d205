// Host-execution stand-in for <cuda_fp16.h> (tests only): __half as IEEE binary16 storage,
// converted with round-to-nearest-even (the compiler's _Float16 conversion).
#pragma once
#include <cstdint>
#include <cstring>

#include "spk_host/runtime.h"

struct alignas(2) __half {
  std::uint16_t bits;
};

inline __half __float2half_rn(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  __half r;
  std::memcpy(&r.bits, &h, 2);
  return r;
}
inline float __half2float(__half h) {
  _Float16 v;
  std::memcpy(&v, &h.bits, 2);
  return static_cast<float>(v);
}
