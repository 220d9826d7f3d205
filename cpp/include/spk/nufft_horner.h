// Host-side piecewise-polynomial (Horner) fit of the NUFFT kernel's weights, shared by the CPU
// loops (cpu/nufft.cpp) and the CUDA launchers (cuda/nufft.cu), which upload the table for their
// kernels: with xi = 2 (u + w/2) - 1 in [-1, 1), weight j = sum_k coef[k * stride + j] xi^(deg - k)
// (spk/nufft.h weights_horner). Evaluating the PSWF directly per weight (an eigenvalue solve and
// w + 1 Legendre series sums) costs tens of times the table's deg + 1 multiply-adds.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "spk/nufft.h"

namespace spk::nufft {

constexpr int stride_for(int w) { return (w + 3) / 4 * 4; }

// Solve the (d+1)x(d+1) system A c = b in place (Gaussian elimination, partial pivoting).
inline void fit_solve(std::vector<long double>& A, std::vector<long double>& b, int n) {
  for (int col = 0; col < n; ++col) {
    int piv = col;
    for (int r = col + 1; r < n; ++r)
      if (std::fabs(A[r * n + col]) > std::fabs(A[piv * n + col])) piv = r;
    if (piv != col) {
      for (int k = 0; k < n; ++k) std::swap(A[col * n + k], A[piv * n + k]);
      std::swap(b[col], b[piv]);
    }
    for (int r = col + 1; r < n; ++r) {
      const long double f = A[r * n + col] / A[col * n + col];
      for (int k = col; k < n; ++k) A[r * n + k] -= f * A[col * n + k];
      b[r] -= f * b[col];
    }
  }
  for (int r = n - 1; r >= 0; --r) {
    long double s = b[r];
    for (int k = r + 1; k < n; ++k) s -= A[r * n + k] * b[k];
    b[r] = s / A[r * n + r];
  }
}

// The kernel named by beta as a function of z, with the PSWF's eigenvalue solved once.
struct KernelFn {
  double beta = 0, c = 0, chi = 0, inv0 = 0;
  explicit KernelFn(double b) : beta(b) {
    if (beta < 0) {
      c = -beta;
      chi = pswf_chi0(c);
      inv0 = 1.0 / pswf_sum(0.0, c, chi);
    }
  }
  double operator()(double z) const {
    if (beta > 0) return es_kernel(z, beta);
    return (z > 1.0 || z < -1.0) ? 0.0 : pswf_sum(z, c, chi) * inv0;
  }
};

// Monomial coefficients (highest degree first, row k holds degree deg - k) of degree-deg
// interpolants at Chebyshev nodes of each support offset's weight as a function of xi in [-1,1].
inline std::vector<double> fit_table(int w, const KernelFn& phi, int deg, int S) {
  const int n = deg + 1;
  std::vector<double> coef(static_cast<std::size_t>(n) * S, 0.0);
  const long double pi = 3.14159265358979323846264338327950L;
  for (int j = 0; j < w; ++j) {
    std::vector<long double> A(static_cast<std::size_t>(n) * n), b(n);
    for (int r = 0; r < n; ++r) {
      const long double xi = std::cos(pi * (r + 0.5L) / n);
      const long double u = (xi + 1) / 2 - 0.5L * w;
      const long double z = (u + j) * 2 / w;
      b[r] = phi(static_cast<double>(z));
      long double p = 1;
      for (int k = 0; k < n; ++k) {  // column k holds xi^k
        A[r * n + k] = p;
        p *= xi;
      }
    }
    fit_solve(A, b, n);
    for (int k = 0; k < n; ++k) coef[static_cast<std::size_t>(deg - k) * S + j] = static_cast<double>(b[k]);
  }
  return coef;
}

template <typename T>
struct Horner {
  int deg = 0;
  std::vector<T> coef;
};

// Smallest degree whose fit is within tol of the kernel everywhere (checked on a fine sample).
template <typename T>
Horner<T> make_horner(int w, double beta) {
  const int S = stride_for(w);
  // eps ~ 10^(1-w) for the width rule w = ceil(log10(1/eps)) + 1; fit two decades below it, but
  // no tighter than the precision can represent.
  const double floor_tol = sizeof(T) == 4 ? 2e-7 : 4e-16;
  const double tol = std::max(floor_tol, 1e-2 * std::pow(10.0, 1 - w));
  const KernelFn phi(beta);
  Horner<T> h;
  std::vector<double> best;
  for (int deg = std::max(4, w); deg <= w + 10; ++deg) {
    std::vector<double> c = fit_table(w, phi, deg, S);
    double err = 0;
    for (int q = 0; q <= 200; ++q) {
      const double xi = -1 + 2.0 * q / 200;
      const double u = (xi + 1) / 2 - 0.5 * w;
      for (int j = 0; j < w; ++j) {
        double acc = c[j];
        for (int k = 1; k <= deg; ++k) acc = acc * xi + c[static_cast<std::size_t>(k) * S + j];
        const double exact = phi((u + j) * 2 / w);
        err = std::max(err, std::fabs(acc - exact));
      }
    }
    best = std::move(c);
    h.deg = deg;
    if (err <= tol) break;
  }
  h.coef.assign(best.begin(), best.end());
  return h;
}

}  // namespace spk::nufft
