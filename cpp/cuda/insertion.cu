// CUDA Fourier insertion: the atomic-free gathers (slab layout, the default, and brick layout), the
// atomic scatter baseline and the extraction, over the per-pair math of spk/insertion.h.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>

#include "cuda/check.cuh"
#include "cuda/insertion.h"
#include "spk/insertion.h"

namespace spk::cuda {
namespace {

// The gathers' dynamic shared memory: the batch's rotations (9 * batch), then, when
// table_in_shared, the blob table. Copies the table in and returns where to read it from.
template <typename R>
__device__ const R* gather_table(R* srot, int batch, const R* table, int table_size, bool table_in_shared, int tid,
                                 int nthreads) {
  R* stab = srot + 9 * batch;
  if (!table_in_shared) return table;
  for (int i = tid; i < table_size; i += nthreads) stab[i] = table[i];
  return stab;
}

// Rotations [j0, j0 + nb) into srot, after every thread has finished with the previous batch
// (and, the first time, the table is written); all of the block's threads call it.
template <typename R>
__device__ void stage_rotations(R* srot, const R* rot, int j0, int nb, int tid, int nthreads) {
  __syncthreads();
  for (int i = tid; i < 9 * nb; i += nthreads) srot[i] = rot[9 * static_cast<std::int64_t>(j0) + i];
  __syncthreads();
}

// Gather: block (bx, by, bz) threads own a brick of voxels.
template <typename R>
__global__ void gather_kernel(const R* __restrict__ images, const R* __restrict__ ctf, const R* __restrict__ rot,
                              const R* __restrict__ table, int table_size, int n, int N, R scale, R radius,
                              double max_freq2, R* __restrict__ vol, R* __restrict__ wts, int batch,
                              bool table_in_shared, int z0, int nz) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  R* srot = reinterpret_cast<R*>(smem_raw);
  const int h = N / 2;
  const int nxh = h + 1;
  const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int nthreads = blockDim.x * blockDim.y * blockDim.z;
  const R* tab = gather_table(srot, batch, table, table_size, table_in_shared, tid, nthreads);

  const int ix = blockIdx.x * blockDim.x + threadIdx.x;
  const int iy = blockIdx.y * blockDim.y + threadIdx.y;
  const int lz = blockIdx.z * blockDim.z + threadIdx.z;  // z within the slab [z0, z0 + nz)
  const int iz = z0 + lz;
  const int kx = ix, ky = iy - h, kz = iz - h;
  const bool mine = ix < nxh && iy < N && lz < nz && iz < N &&
                    static_cast<double>(kx * kx + ky * ky + kz * kz) <= max_freq2;
  // brick centre and half-diagonal, for the block-uniform slab test
  const R cx = R(blockIdx.x * blockDim.x) + R(0.5) * R(blockDim.x - 1);
  const R cy = R(blockIdx.y * blockDim.y) + R(0.5) * R(blockDim.y - 1) - R(h);
  const R cz = R(z0 + static_cast<int>(blockIdx.z * blockDim.z)) + R(0.5) * R(blockDim.z - 1) - R(h);
  const R half_diag = R(0.5) * sqrt(R(blockDim.x * blockDim.x + blockDim.y * blockDim.y + blockDim.z * blockDim.z));
  R acc_re = 0, acc_im = 0, acc_w = 0;
  const std::int64_t plane = static_cast<std::int64_t>(N) * N;
  for (int j0 = 0; j0 < n; j0 += batch) {
    const int nb = min(batch, n - j0);
    stage_rotations(srot, rot, j0, nb, tid, nthreads);
    for (int b = 0; b < nb; ++b) {
      const R* r = srot + 9 * b;
      const R dist = r[6] * cx + r[7] * cy + r[8] * cz;
      if (fabs(dist) >= radius + half_diag) continue;  // same for every thread of the block
      if (!mine) continue;
      const int j = j0 + b;
      R a, bb, w;
      if (insertion_gather_voxel<R, R>(images + 2 * j * plane, ctf ? ctf + j * plane : nullptr, r, R(kx), R(ky),
                                       R(kz), tab, scale, radius, h, &a, &bb, &w)) {
        acc_re += a;
        acc_im += bb;
        acc_w += w;
      }
    }
  }
  if (mine) {
    const std::int64_t k = (static_cast<std::int64_t>(lz) * N + iy) * nxh + ix;  // slab-relative
    vol[2 * k] += acc_re;
    vol[2 * k + 1] += acc_im;
    wts[k] += acc_w;
  }
}

// Slab gather (the thread layout of Xmipp's GPU reconstruct_fourier, without its atomics): one
// launch per dominant axis d of the projection normals (insertion_dominant_axis). A thread owns
// the column of voxels along d at one position of the other two axes (the 2-D block tiles that
// plane); for every projection of the batch whose normal is dominated by d it visits only the
// voxels of its column within the blob radius of the plane (at most 2 sqrt(3) radius + 3), sums
// each one's blob window of pixels in registers (insertion_gather_voxel) and adds it into the
// voxel. A voxel belongs to one thread per launch and the three launches are stream-ordered, so
// there are no atomics and every voxel's sum has a fixed order: bitwise deterministic.
// The axis is a template parameter so that k[], ext[] and off[] are indexed by constants and stay
// in registers.
template <typename R, int axis>
__global__ void slab_kernel(const R* __restrict__ images, const R* __restrict__ ctf, const R* __restrict__ rot,
                            const R* __restrict__ table, int table_size, int n, int N, R scale, R radius,
                            double max_freq2, R* __restrict__ vol, R* __restrict__ wts, int batch,
                            bool table_in_shared, int z0, int nz) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  R* srot = reinterpret_cast<R*>(smem_raw);
  const int h = N / 2;
  const int nxh = h + 1;
  const int tid = threadIdx.x + blockDim.x * threadIdx.y;
  const int nthreads = blockDim.x * blockDim.y;
  const R* tab = gather_table(srot, batch, table, table_size, table_in_shared, tid, nthreads);

  // array extents and k-offsets per axis (x: [0, h]; y: [-h, h - 1]; z: the slab's planes)
  const int ext[3] = {nxh, N, nz};
  const int off[3] = {0, -h, z0 - h};
  constexpr int a0 = axis == 0 ? 1 : 0;  // the tile's two axes, ascending
  constexpr int a1 = axis == 2 ? 1 : 2;
  const int pa = blockIdx.x * blockDim.x + threadIdx.x;
  const int pb = blockIdx.y * blockDim.y + threadIdx.y;
  const bool mine = pa < ext[a0] && pb < ext[a1];
  int k[3];
  k[a0] = pa + off[a0];
  k[a1] = pb + off[a1];
  const std::int64_t plane = static_cast<std::int64_t>(N) * N;
  for (int j0 = 0; j0 < n; j0 += batch) {
    const int nb = min(batch, n - j0);
    stage_rotations(srot, rot, j0, nb, tid, nthreads);
    for (int b = 0; b < nb; ++b) {
      const R* r = srot + 9 * b;
      if (insertion_dominant_axis(r[6], r[7], r[8]) != axis) continue;  // the same for the whole block
      if (!mine) continue;
      const int j = j0 + b;
      int s, e;  // the column's voxels near the plane: |n . k| < radius
      insertion_row_interval(r[6 + axis], r[6 + a0] * R(k[a0]) + r[6 + a1] * R(k[a1]), radius, off[axis],
                             off[axis] + ext[axis] - 1, &s, &e);
#pragma unroll 1
      for (int kd = s; kd <= e; ++kd) {
        k[axis] = kd;
        if (static_cast<double>(k[0] * k[0] + k[1] * k[1] + k[2] * k[2]) > max_freq2) continue;
        R sa, sb, sw;
        if (!insertion_gather_voxel<R, R>(images + 2 * j * plane, ctf ? ctf + j * plane : nullptr, r, R(k[0]),
                                          R(k[1]), R(k[2]), tab, scale, radius, h, &sa, &sb, &sw))
          continue;
        const std::int64_t q = (static_cast<std::int64_t>(k[2] - off[2]) * N + (k[1] + h)) * nxh + k[0];
        vol[2 * q] += sa;  // slab-relative index; this thread owns the voxel in this launch
        vol[2 * q + 1] += sb;
        wts[q] += sw;
      }
    }
  }
}

// This thread's pixel t = (j, row, col) in a launch of one thread per pixel of n N x N images;
// false past the last pixel.
__device__ __forceinline__ bool thread_pixel(int n, int N, std::int64_t* t, int* j, int* row, int* col) {
  const std::int64_t plane = static_cast<std::int64_t>(N) * N;
  *t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (*t >= n * plane) return false;
  *j = static_cast<int>(*t / plane);
  *row = static_cast<int>((*t % plane) / N), *col = static_cast<int>(*t % N);
  return true;
}

template <typename R>
__global__ void scatter_kernel(const R* __restrict__ images, const R* __restrict__ ctf, const R* __restrict__ rot,
                               const R* __restrict__ table, int n, int N, R scale, R radius, double max_freq2,
                               R* vol, R* wts) {
  std::int64_t t;
  int j, row, col;
  if (!thread_pixel(n, N, &t, &j, &row, &col)) return;
  const int h = N / 2;
  const R xr = images[2 * t], xi = images[2 * t + 1];
  const R c = ctf ? ctf[t] : R(1);
  insertion_pixel_walk(rot + 9 * j, R(col - h), R(row - h), table, scale, radius, max_freq2, h,
                       [&](std::int64_t k, R tw) {
                         const R w = tw * c;
                         atomicAdd(vol + 2 * k, w * xr);
                         atomicAdd(vol + 2 * k + 1, w * xi);
                         atomicAdd(wts + k, w * c);
                       });
}

template <typename R>
__global__ void extract_kernel(const R* __restrict__ vol, const R* __restrict__ ctf, const R* __restrict__ rot,
                               const R* __restrict__ table, int n, int N, R scale, R radius, double max_freq2,
                               R* __restrict__ out) {
  std::int64_t t;
  int j, row, col;
  if (!thread_pixel(n, N, &t, &j, &row, &col)) return;
  const int h = N / 2;
  R a, b;
  insertion_extract_pixel(vol, rot + 9 * j, R(col - h), R(row - h), table, scale, radius, max_freq2, h, &a, &b);
  const R c = ctf ? ctf[t] : R(1);
  out[2 * t] = c * a;
  out[2 * t + 1] = c * b;
}

void check_sizes(std::int64_t n, std::int64_t N, std::int64_t table_size, double scale, double radius) {
  if (n < 0 || N < 4 || N % 2 || N > 8192) throw std::invalid_argument("insertion: `N` must be even, 4..8192");
  if (!(radius > 0)) throw std::invalid_argument("insertion: `radius` must be positive");
  if (table_size < 2 || scale * radius * radius > static_cast<double>(table_size - 1) + 1e-6)
    throw std::invalid_argument("insertion: `scale` reaches past the end of `table`");
}

template <typename R>
void launch_insert(const InsertionInsertLaunch<R>& a) {
  const std::int64_t n = a.n, N = a.N, table_size = a.table_size;
  const double scale = a.scale, radius = a.radius, max_freq2 = a.max_freq2;
  const bool gather = a.gather, table_in_shared = a.table_in_shared;
  const int bx = a.block_x, by = a.block_y, bz = a.block_z, batch = a.batch, z0 = a.z0;
  const int nz = a.nz < 0 ? static_cast<int>(N) : a.nz;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(a.stream);
  check_sizes(n, N, table_size, scale, radius);
  if (n == 0) return;
  const R* img = reinterpret_cast<const R*>(a.images);  // interleaved (re, im)
  const R* c = a.ctf;
  const R* rot = a.rotations;
  const R* tab = a.table;
  R* vol = reinterpret_cast<R*>(a.volume);
  R* wts = a.weights;
  if (gather) {
    if (bx < 1 || by < 1 || bz < 1 || bx * by * bz > 1024 || batch < 1)
      throw std::invalid_argument("insertion: bad block shape or batch");
    const int h = static_cast<int>(N / 2);
    if (z0 < 0 || nz < 1 || z0 + nz > N) throw std::invalid_argument("insertion: slab [z0, z0 + nz) outside the volume");
    std::size_t smem = sizeof(R) * (9 * static_cast<std::size_t>(batch) +
                                    (table_in_shared ? static_cast<std::size_t>(table_size) : 0));
    if (smem > 48 * 1024) {
      int dev = 0, optin = 0;
      SPK_CUDA_CHECK(cudaGetDevice(&dev));
      SPK_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
      if (smem > static_cast<std::size_t>(optin))
        throw std::invalid_argument("insertion: the blob table and batch do not fit in shared memory; "
                                    "use table_in_shared=False or a smaller batch");
      for (auto* kern : {gather_kernel<R>, slab_kernel<R, 0>, slab_kernel<R, 1>, slab_kernel<R, 2>})
        SPK_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    }
    if (a.slab) {
      // block (bx, by * bz) threads tile the plane across the dominant axis; z, y, x in turn
      const int ext[3] = {h + 1, static_cast<int>(N), nz};
      const dim3 block(bx, by * bz);
      auto grid = [&](int axis) {
        const int e0 = ext[axis == 0 ? 1 : 0], e1 = ext[axis == 2 ? 1 : 2];
        return dim3((e0 + bx - 1) / bx, (e1 + by * bz - 1) / (by * bz));
      };
      const int tsz = static_cast<int>(table_size), ni = static_cast<int>(n), Ni = static_cast<int>(N);
      slab_kernel<R, 2><<<grid(2), block, smem, s>>>(img, c, rot, tab, tsz, ni, Ni, R(scale), R(radius), max_freq2,
                                                     vol, wts, batch, table_in_shared, z0, nz);
      SPK_CUDA_CHECK_LAUNCH();
      slab_kernel<R, 1><<<grid(1), block, smem, s>>>(img, c, rot, tab, tsz, ni, Ni, R(scale), R(radius), max_freq2,
                                                     vol, wts, batch, table_in_shared, z0, nz);
      SPK_CUDA_CHECK_LAUNCH();
      slab_kernel<R, 0><<<grid(0), block, smem, s>>>(img, c, rot, tab, tsz, ni, Ni, R(scale), R(radius), max_freq2,
                                                     vol, wts, batch, table_in_shared, z0, nz);
      SPK_CUDA_CHECK_LAUNCH();
      return;
    }
    dim3 block(bx, by, bz);
    dim3 grid((h + 1 + bx - 1) / bx, (static_cast<int>(N) + by - 1) / by, (nz + bz - 1) / bz);
    gather_kernel<R><<<grid, block, smem, s>>>(img, c, rot, tab, static_cast<int>(table_size), static_cast<int>(n),
                                               static_cast<int>(N), R(scale), R(radius), max_freq2, vol, wts, batch,
                                               table_in_shared, z0, nz);
  } else {
    if (z0 != 0 || nz != N) throw std::invalid_argument("insertion: the scatter takes the whole volume");
    const std::int64_t total = n * N * N;
    const int threads = 256;
    scatter_kernel<R><<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, s>>>(
        img, c, rot, tab, static_cast<int>(n), static_cast<int>(N), R(scale), R(radius), max_freq2, vol, wts);
  }
  SPK_CUDA_CHECK_LAUNCH();
}

template <typename R>
void launch_extract(const InsertionExtractLaunch<R>& a) {
  check_sizes(a.n, a.N, a.table_size, a.scale, a.radius);
  if (a.n == 0) return;
  const std::int64_t total = a.n * a.N * a.N;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  extract_kernel<R><<<blocks, threads, 0, reinterpret_cast<cudaStream_t>(a.stream)>>>(
      reinterpret_cast<const R*>(a.volume), a.ctf, a.rotations, a.table, static_cast<int>(a.n),
      static_cast<int>(a.N), static_cast<R>(a.scale), static_cast<R>(a.radius), a.max_freq2,
      reinterpret_cast<R*>(a.out));
  SPK_CUDA_CHECK_LAUNCH();
}

}  // namespace

void insertion_insert(const InsertionInsertLaunch<float>& a) { launch_insert(a); }
void insertion_insert(const InsertionInsertLaunch<double>& a) { launch_insert(a); }
void insertion_extract(const InsertionExtractLaunch<float>& a) { launch_extract(a); }
void insertion_extract(const InsertionExtractLaunch<double>& a) { launch_extract(a); }

}  // namespace spk::cuda
