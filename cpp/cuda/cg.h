// Launchers for the CUDA conjugate gradient vector kernels (plain C++: typed device pointers).
// Vectors are real views of n reals (2n for complex); `state` is the device double[16] of
// spk/cg.h, `hist` the device residual history, `work` a device scratch of kCgWorkDoubles.
#pragma once
#include <cstdint>

namespace spk::cuda {

constexpr int kCgMaxBlocks = 1024;
constexpr int kCgWorkDoubles = 2 * kCgMaxBlocks;

// One argument struct per launcher; T is float or double (the vectors' real type). Vectors
// of complex systems are interleaved (re, im) views: `n` counts reals. `stream` is a
// cudaStream_t as an integer (0: the default stream).
template <class T>
struct CgDotLaunch {  // <a, b> (real part, and imaginary when cplx) into state[which]
  const T* a = nullptr;
  const T* b = nullptr;
  std::int64_t n = 0;
  bool cplx = false;
  double* state = nullptr;
  double* hist = nullptr;
  int which = 0;
  double* work = nullptr;
  std::uintptr_t stream = 0;
};

template <class T>
struct CgUpdateXrLaunch {  // x += alpha p, r -= alpha q, ||r||^2 and the state update
  T* x = nullptr;
  T* r = nullptr;
  const T* p = nullptr;
  const T* q = nullptr;
  std::int64_t n = 0;
  double* state = nullptr;
  double* hist = nullptr;
  double* work = nullptr;
  std::uintptr_t stream = 0;
};

template <class T>
struct CgUpdatePLaunch {  // p = z + beta p, beta from the state
  T* p = nullptr;
  const T* z = nullptr;
  std::int64_t n = 0;
  const double* state = nullptr;
  std::uintptr_t stream = 0;
};

template <class T>
struct CgResidualLaunch {  // r = b - q
  T* r = nullptr;
  const T* b = nullptr;
  const T* q = nullptr;
  std::int64_t n = 0;
  std::uintptr_t stream = 0;
};

void cg_dot(const CgDotLaunch<float>& a);
void cg_dot(const CgDotLaunch<double>& a);
void cg_update_xr(const CgUpdateXrLaunch<float>& a);
void cg_update_xr(const CgUpdateXrLaunch<double>& a);
void cg_update_p(const CgUpdatePLaunch<float>& a);
void cg_update_p(const CgUpdatePLaunch<double>& a);
void cg_residual(const CgResidualLaunch<float>& a);
void cg_residual(const CgResidualLaunch<double>& a);

}  // namespace spk::cuda
