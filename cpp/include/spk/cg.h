// Conjugate gradient: the scalar state machine shared by the C++ CPU loops and the CUDA
// kernels, so that the solver's scalars can live wherever the vectors do (on the GPU: device
// memory, no host round trip per iteration).
//
// Vectors are handled as real arrays; a complex vector of n elements is its 2n interleaved real
// and imaginary parts. For a Hermitian positive definite system every CG scalar is real, and
// Re<a, b> = sum over the 2n reals of a_i b_i, so the updates are real axpys. The imaginary part
// of p^H A p is still accumulated, to detect a non-Hermitian operator.
//
// Iteration (preconditioner M, z = M r; without one, z = r and rho = rr):
//   q = A p                        (user)
//   dot(p, q)  -> finish_pq        alpha = rho_new / pq, rho = rho_new; breakdown checks
//   update_xr: x += alpha p, r -= alpha q, rr = <r, r>  -> finish_rr (history, convergence)
//   z = M r; dot(r, z) -> finish_rho   (preconditioned only)
//   update_p:  p = z + (rho_new / rho) p
// Once the status leaves kCgRunning every kernel returns at once, so extra iterations launched
// between two host checks change nothing.
#pragma once

#include <cmath>

#include "spk/common.h"

namespace spk {

// Slots of the state array (double[kCgStateSize]).
constexpr int kCgRho = 0;      // <r, z> that built the current p
constexpr int kCgRhoNew = 1;   // latest <r, z>
constexpr int kCgPq = 2;       // Re p^H A p
constexpr int kCgPqIm = 3;     // Im p^H A p
constexpr int kCgAlpha = 4;
constexpr int kCgRr = 5;       // latest ||r||^2
constexpr int kCgStatus = 6;   // see kCgRunning...
constexpr int kCgIter = 7;     // completed iterations (x updates)
constexpr int kCgAtol = 8;     // stop when ||r|| < atol
constexpr int kCgHermTol = 9;  // |Im pq| > herm_tol * |Re pq| means non-Hermitian
constexpr int kCgPrecond = 10; // 1 when z is a separate preconditioned vector
constexpr int kCgStateSize = 16;

constexpr double kCgRunning = 0.0;
constexpr double kCgConverged = 1.0;
constexpr double kCgIndefinite = 2.0;     // p^H A p <= 0
constexpr double kCgNonFinite = 3.0;      // NaN or Inf in a reduction
constexpr double kCgNonHermitian = 4.0;   // p^H A p has a large imaginary part
constexpr double kCgPrecondBad = 5.0;     // <r, M r> <= 0

// Which reduction a dot product feeds.
constexpr int kCgDotPq = 0;
constexpr int kCgDotRho = 1;
constexpr int kCgDotRr0 = 2;

SPK_HD bool cg_running(const double* st) { return st[kCgStatus] == kCgRunning; }

SPK_HD void cg_finish_dot(double* st, double* hist, int which, double re, double im) {
  if (!cg_running(st)) return;
  if (which == kCgDotPq) {
    st[kCgPq] = re;
    st[kCgPqIm] = im;
    if (!std::isfinite(re) || !std::isfinite(im)) {
      st[kCgStatus] = kCgNonFinite;
    } else if (!(re > 0.0)) {
      st[kCgStatus] = kCgIndefinite;
    } else if (std::fabs(im) > st[kCgHermTol] * re) {
      st[kCgStatus] = kCgNonHermitian;
    } else {
      st[kCgAlpha] = st[kCgRhoNew] / re;
      st[kCgRho] = st[kCgRhoNew];
    }
  } else if (which == kCgDotRho) {
    if (!std::isfinite(re)) {
      st[kCgStatus] = kCgNonFinite;
    } else if (!(re > 0.0)) {
      st[kCgStatus] = kCgPrecondBad;
    } else {
      st[kCgRhoNew] = re;
    }
  } else {  // kCgDotRr0: the initial residual
    st[kCgRr] = re;
    const double norm = std::sqrt(re);
    hist[0] = norm;
    if (!std::isfinite(re)) {
      st[kCgStatus] = kCgNonFinite;
    } else if (norm < st[kCgAtol]) {
      st[kCgStatus] = kCgConverged;
    } else if (st[kCgPrecond] == 0.0) {
      st[kCgRhoNew] = re;
    }
  }
}

// After x += alpha p, r -= alpha q with rr = ||r||^2.
SPK_HD void cg_finish_rr(double* st, double* hist, double rr) {
  if (!cg_running(st)) return;
  const int k = static_cast<int>(st[kCgIter]) + 1;
  st[kCgIter] = k;
  st[kCgRr] = rr;
  const double norm = std::sqrt(rr);
  hist[k] = norm;
  if (!std::isfinite(rr)) {
    st[kCgStatus] = kCgNonFinite;
  } else if (norm < st[kCgAtol]) {
    st[kCgStatus] = kCgConverged;
  } else if (st[kCgPrecond] == 0.0) {
    st[kCgRhoNew] = rr;
  }
}

SPK_HD double cg_beta(const double* st) { return st[kCgRhoNew] / st[kCgRho]; }

// CPU versions (OpenMP). Vectors are real arrays of n reals (2n for complex), float when
// `single`; sums are accumulated in double over fixed chunks and added in chunk order, so the
// result does not depend on the thread count.
double cg_dot_cpu(const void* a, const void* b, index_t n, bool single, bool cplx, double* im_out);
double cg_update_xr_cpu(void* x, void* r, const void* p, const void* q, index_t n, bool single, double alpha);
void cg_update_p_cpu(void* p, const void* z, index_t n, bool single, double beta);

}  // namespace spk
