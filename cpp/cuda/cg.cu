// Conjugate gradient vector kernels on the GPU. The solver's scalars stay in device memory
// (spk/cg.h state): each reduction is a fixed-grid first stage writing one partial per block and
// a one-block second stage that adds the partials in a fixed tree and runs the scalar update, so
// the host never waits on a scalar and the sums are bitwise reproducible (no atomics).
#include <cuda_runtime.h>

#include "cuda/cg.h"
#include "cuda/check.cuh"
#include "spk/cg.h"

namespace spk::cuda {
namespace {

constexpr int kThreads = 256;

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

int grid_for(index_t units) {
  index_t g = (units + kThreads * 4 - 1) / (kThreads * 4);
  if (g < 1) g = 1;
  if (g > kCgMaxBlocks) g = kCgMaxBlocks;
  return static_cast<int>(g);
}

// Fixed-shape tree over the block's threads; every thread must call it.
__device__ void block_sum2(double& s, double& t) {
  __shared__ double ss[kThreads];
  __shared__ double st[kThreads];
  ss[threadIdx.x] = s;
  st[threadIdx.x] = t;
  __syncthreads();
  for (int h = kThreads / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) {
      ss[threadIdx.x] += ss[threadIdx.x + h];
      st[threadIdx.x] += st[threadIdx.x + h];
    }
    __syncthreads();
  }
  s = ss[0];
  t = st[0];
}

template <typename T>
__global__ void dot_partial(const T* __restrict__ a, const T* __restrict__ b, index_t n, bool cplx,
                            const double* __restrict__ state, double* __restrict__ work) {
  if (!cg_running(state)) return;  // the same answer for the whole grid
  double s = 0.0, t = 0.0;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  const index_t start = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (cplx) {
    for (index_t j = start; j < n / 2; j += stride) {
      const double ar = a[2 * j], ai = a[2 * j + 1], br = b[2 * j], bi = b[2 * j + 1];
      s += ar * br + ai * bi;
      t += ar * bi - ai * br;
    }
  } else {
    for (index_t i = start; i < n; i += stride) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  block_sum2(s, t);
  if (threadIdx.x == 0) {
    work[2 * blockIdx.x] = s;
    work[2 * blockIdx.x + 1] = t;
  }
}

// mode 0: a dot product finished by cg_finish_dot(which); mode 1: ||r||^2 after update_xr.
__global__ void reduce_final(const double* __restrict__ work, int blocks, double* __restrict__ state,
                             double* __restrict__ hist, int mode, int which) {
  if (!cg_running(state)) return;
  double s = 0.0, t = 0.0;
  for (int j = threadIdx.x; j < blocks; j += blockDim.x) {
    s += work[2 * j];
    t += work[2 * j + 1];
  }
  block_sum2(s, t);
  if (threadIdx.x == 0) {
    if (mode == 0)
      cg_finish_dot(state, hist, which, s, t);
    else
      cg_finish_rr(state, hist, s);
  }
}

template <typename T>
__global__ void update_xr_partial(T* __restrict__ x, T* __restrict__ r, const T* __restrict__ p,
                                  const T* __restrict__ q, index_t n, const double* __restrict__ state,
                                  double* __restrict__ work) {
  if (!cg_running(state)) return;
  const double alpha = state[kCgAlpha];
  double s = 0.0, unused = 0.0;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    x[i] = static_cast<T>(x[i] + alpha * p[i]);
    const T ri = static_cast<T>(r[i] - alpha * q[i]);
    r[i] = ri;
    s += static_cast<double>(ri) * static_cast<double>(ri);
  }
  block_sum2(s, unused);
  if (threadIdx.x == 0) {
    work[2 * blockIdx.x] = s;
    work[2 * blockIdx.x + 1] = 0.0;
  }
}

template <typename T>
__global__ void update_p_kernel(T* __restrict__ p, const T* __restrict__ z, index_t n,
                                const double* __restrict__ state) {
  if (!cg_running(state)) return;
  const double beta = cg_beta(state);
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = static_cast<T>(z[i] + beta * p[i]);
}

template <typename T>
__global__ void residual_kernel(T* __restrict__ r, const T* __restrict__ b, const T* __restrict__ q, index_t n) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    r[i] = b[i] - q[i];
}

int elementwise_grid(index_t n) {
  index_t g = (n + kThreads - 1) / kThreads;
  if (g < 1) g = 1;
  if (g > 8 * kCgMaxBlocks) g = 8 * kCgMaxBlocks;
  return static_cast<int>(g);
}

template <typename T>
void dot_t(const CgDotLaunch<T>& a) {
  cudaStream_t s = as_stream(a.stream);
  const int g = grid_for(a.cplx ? a.n / 2 : a.n);
  dot_partial<T><<<g, kThreads, 0, s>>>(a.a, a.b, a.n, a.cplx, a.state, a.work);
  SPK_CUDA_CHECK_LAUNCH();
  reduce_final<<<1, kThreads, 0, s>>>(a.work, g, a.state, a.hist, 0, a.which);
  SPK_CUDA_CHECK_LAUNCH();
}

template <typename T>
void update_xr_t(const CgUpdateXrLaunch<T>& a) {
  cudaStream_t s = as_stream(a.stream);
  const int g = grid_for(a.n);
  update_xr_partial<T><<<g, kThreads, 0, s>>>(a.x, a.r, a.p, a.q, a.n, a.state, a.work);
  SPK_CUDA_CHECK_LAUNCH();
  reduce_final<<<1, kThreads, 0, s>>>(a.work, g, a.state, a.hist, 1, 0);
  SPK_CUDA_CHECK_LAUNCH();
}

template <typename T>
void update_p_t(const CgUpdatePLaunch<T>& a) {
  update_p_kernel<T><<<elementwise_grid(a.n), kThreads, 0, as_stream(a.stream)>>>(a.p, a.z, a.n, a.state);
  SPK_CUDA_CHECK_LAUNCH();
}

template <typename T>
void residual_t(const CgResidualLaunch<T>& a) {
  residual_kernel<T><<<elementwise_grid(a.n), kThreads, 0, as_stream(a.stream)>>>(a.r, a.b, a.q, a.n);
  SPK_CUDA_CHECK_LAUNCH();
}

}  // namespace

void cg_dot(const CgDotLaunch<float>& a) { dot_t(a); }
void cg_dot(const CgDotLaunch<double>& a) { dot_t(a); }
void cg_update_xr(const CgUpdateXrLaunch<float>& a) { update_xr_t(a); }
void cg_update_xr(const CgUpdateXrLaunch<double>& a) { update_xr_t(a); }
void cg_update_p(const CgUpdatePLaunch<float>& a) { update_p_t(a); }
void cg_update_p(const CgUpdatePLaunch<double>& a) { update_p_t(a); }
void cg_residual(const CgResidualLaunch<float>& a) { residual_t(a); }
void cg_residual(const CgResidualLaunch<double>& a) { residual_t(a); }

}  // namespace spk::cuda
