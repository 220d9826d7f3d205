// Launchers of the CUDA Fourier insertion kernels (plain C++: typed device pointers; T float or double).
#pragma once
#include <complex>
#include <cstdint>

namespace spk::cuda {

// Adds n centred image spectra (interleaved complex (n, N, N)) into the half volume
// (N, N, N/2+1) and its weights, in place, with the blob table (table_size entries in r^2).
// gather, slab layout (slab = true, the default): three launches, one per dominant axis of the
// projection normals; a block of block_x * (block_y * block_z) threads tiles the plane across that
// axis, each thread owns a column of voxels along it and, per projection of that axis, visits only
// the column's few voxels within the blob radius of the plane. gather, brick layout (slab =
// false): one thread block per brick of block_x * block_y * block_z voxels, each thread owns a
// voxel and walks every projection, skipping, block-uniformly, those whose slab misses the brick.
// Both stage the rotations `batch` at a time in shared memory (the table too when
// table_in_shared), write each voxel from one thread, use no atomics and are bitwise
// deterministic. scatter: one thread per pixel, atomicAdd into the voxels of its blob window (the
// baseline).
// Gather only: volume and weights may hold the z-slab [z0, z0 + nz) of the half volume
// ((nz, N, N/2+1) buffers), so a volume larger than device memory is filled slab by slab; the
// scatter needs z0 = 0, nz = N.
template <class T>
struct InsertionInsertLaunch {
  const std::complex<T>* images = nullptr;  // (n, N, N) centred spectra
  const T* ctf = nullptr;                   // (n, N, N) per-pixel CTF, or null for none
  const T* rotations = nullptr;             // (n, 3, 3)
  const T* table = nullptr;                 // blob values in r^2, table_size entries
  std::int64_t table_size = 0;
  std::int64_t n = 0, N = 0;
  double scale = 0, radius = 0, max_freq2 = 0;
  std::complex<T>* volume = nullptr;        // (nz, N, N/2+1), added into
  T* weights = nullptr;                     // (nz, N, N/2+1), added into
  bool gather = true;
  int block_x = 8, block_y = 8, block_z = 4, batch = 64;  // gather launch shape
  bool table_in_shared = true;
  bool slab = true;                         // gather layout: slab (columns across the plane) or brick
  int z0 = 0, nz = -1;                      // the slab held by volume/weights; nz < 0: all N planes
  std::uintptr_t stream = 0;                // cudaStream_t as an integer
};
void insertion_insert(const InsertionInsertLaunch<float>& a);
void insertion_insert(const InsertionInsertLaunch<double>& a);

// Extraction, the adjoint of the insertion's volume part: out (n, N, N) complex, one thread per
// pixel gathering from the voxels of its blob window.
template <class T>
struct InsertionExtractLaunch {
  const std::complex<T>* volume = nullptr;  // (N, N, N/2+1)
  const T* ctf = nullptr;
  const T* rotations = nullptr;
  const T* table = nullptr;
  std::int64_t table_size = 0;
  std::int64_t n = 0, N = 0;
  double scale = 0, radius = 0, max_freq2 = 0;
  std::complex<T>* out = nullptr;           // (n, N, N)
  std::uintptr_t stream = 0;
};
void insertion_extract(const InsertionExtractLaunch<float>& a);
void insertion_extract(const InsertionExtractLaunch<double>& a);

}  // namespace spk::cuda
