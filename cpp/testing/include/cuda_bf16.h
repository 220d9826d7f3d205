// Host-execution stand-in for <cuda_bf16.h> (tests only): __nv_bfloat16 as the upper 16 bits of
// a float, converted with round-to-nearest-even (NaN stays a quiet NaN).
#pragma once
#include <cstdint>
#include <cstring>

#include "spk_host/runtime.h"

struct alignas(2) __nv_bfloat16 {
  std::uint16_t bits;
};

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  __nv_bfloat16 r;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    r.bits = static_cast<std::uint16_t>((u >> 16) | 0x40u);
    return r;
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  r.bits = static_cast<std::uint16_t>(u >> 16);
  return r;
}
inline float __bfloat162float(__nv_bfloat16 h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
