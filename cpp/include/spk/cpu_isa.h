// The widest x86 instruction set the C++ CPU kernels may pick at run time: the CPU's own,
// capped by the environment variable SPK_CPU_ISA (native | avx512 | avx2 | generic).
//
// The paths may differ by rounding (the generic build has no FMA; AVX-512 and AVX2 happen to
// give the same distances). The cap lets a user take the path another machine takes, and lets
// the tests run the AVX2 and generic paths on a CPU that would otherwise always take AVX-512.
#pragma once

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace spk::cpu {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

// Read at every kernel call (a getenv, negligible beside a kernel), so a process may change it.
inline Isa isa_cap() {
  const char* v = std::getenv("SPK_CPU_ISA");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "native") == 0 || std::strcmp(v, "avx512") == 0)
    return Isa::avx512;
  if (std::strcmp(v, "avx2") == 0) return Isa::avx2;
  if (std::strcmp(v, "generic") == 0) return Isa::generic;
  throw std::invalid_argument(std::string("SPK_CPU_ISA must be native, avx512, avx2 or generic, got '") + v + "'");
}

}  // namespace spk::cpu
