// Kernels that exercise the host-execution layer's primitives one by one (tests only):
// warp votes, matches and shuffles, atomics, WMMA numerics, and misuse the harness must report.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

namespace {

namespace wmma = nvcuda::wmma;

__global__ void warp_ops_kernel(const int* in, unsigned* out) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % 32;
  const int v = in[t];
  unsigned* o = out + 8 * t;
  o[0] = __ballot_sync(0xffffffffu, v & 1);
  o[1] = __match_any_sync(0xffffffffu, v % 5);
  o[2] = __shfl_sync(0xffffffffu, v, (lane * 7) % 32);
  o[3] = __shfl_xor_sync(0xffffffffu, v, 5);
  o[4] = __shfl_down_sync(0xffffffffu, v, 3, 16);
  o[5] = __shfl_up_sync(0xffffffffu, v, 2);
  o[6] = __any_sync(0xffffffffu, v > 90) * 2 + __all_sync(0xffffffffu, v >= 0);
  // a half-warp vote: only lanes 0-15 take part
  o[7] = lane < 16 ? __ballot_sync(0x0000ffffu, v > 50) : 0u;
}

// Every thread of 3-D blocks adds its linear index to one counter, 1 to its block's slot.
__global__ void atomics_kernel(unsigned long long* total, int* per_block, double* dsum) {
  const unsigned per = blockDim.x * blockDim.y * blockDim.z;
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z) + blockIdx.x * per;
  atomicAdd(total, static_cast<unsigned long long>(t));
  atomicAdd(per_block + blockIdx.x, 1);
  atomicAdd(dsum, 0.5);
}

// D (16x16) = A (16x8, row-major) B (8x16, col-major), tf32 inputs as given (not rounded).
__global__ void wmma_tf32_kernel(const float* a, const float* b, float* d, int round) {
  __shared__ alignas(32) float sa[16 * 8];
  __shared__ alignas(32) float sb[16 * 8];
  for (int i = threadIdx.x; i < 128; i += 32) {
    sa[i] = a[i];
    sb[i] = b[i];
  }
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
  wmma::fill_fragment(fc, 0.25f);
  wmma::load_matrix_sync(fa, sa, 8);
  wmma::load_matrix_sync(fb, sb, 8);
  if (round) {
    for (int e = 0; e < fa.num_elements; ++e) fa.x[e] = wmma::__float_to_tf32(fa.x[e]);
    for (int e = 0; e < fb.num_elements; ++e) fb.x[e] = wmma::__float_to_tf32(fb.x[e]);
  }
  wmma::mma_sync(fc, fa, fb, fc);
  __shared__ alignas(32) float sd[256];
  wmma::store_matrix_sync(sd, fc, 16, wmma::mem_row_major);
  __syncwarp();
  for (int i = threadIdx.x; i < 256; i += 32) d[i] = sd[i];
}

// The same with fp16 inputs (16x16x16): A row-major, B row-major.
__global__ void wmma_fp16_kernel(const float* a, const float* b, float* d) {
  __shared__ alignas(32) __half sa[256];
  __shared__ alignas(32) __half sb[256];
  for (int i = threadIdx.x; i < 256; i += 32) {
    sa[i] = __float2half_rn(a[i]);
    sb[i] = __float2half_rn(b[i]);
  }
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::fill_fragment(fc, 0.0f);
  wmma::load_matrix_sync(fa, sa, 16);
  wmma::load_matrix_sync(fb, sb, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  __shared__ alignas(32) float sd[256];
  wmma::store_matrix_sync(sd, fc, 16, wmma::mem_col_major);
  __syncwarp();
  for (int i = threadIdx.x; i < 256; i += 32) d[i] = sd[i];
}

// Misuse: lanes 0-15 vote while lanes 16-31 wait at __syncwarp.
__global__ void divergent_warp_kernel(unsigned* out) {
  if (threadIdx.x < 16)
    out[threadIdx.x] = __ballot_sync(0xffffffffu, 1);
  else
    __syncwarp();
}

// Misuse: a WMMA load from a pointer that is not 32-byte aligned.
__global__ void misaligned_wmma_kernel(float* d) {
  __shared__ alignas(32) float s[16 * 8 + 1];
  for (int i = threadIdx.x; i < 16 * 8 + 1; i += 32) s[i] = 1.0f;
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, s + 1, 8);
  d[threadIdx.x] = fa.x[0];
}

// Misuse: 64 KiB of dynamic shared memory without cudaFuncSetAttribute.
__global__ void big_smem_kernel(float* d) {
  extern __shared__ float dyn[];
  dyn[threadIdx.x] = 1.0f;
  d[threadIdx.x] = dyn[threadIdx.x];
}

int finish() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? 0 : static_cast<int>(e);
}

}  // namespace

extern "C" {

const char* spkh_test_error_string(int e) { return cudaGetErrorString(static_cast<cudaError_t>(e)); }

int spkh_test_warp_ops(const int* in, unsigned* out) {
  warp_ops_kernel<<<2, 64>>>(in, out);
  return finish();
}
int spkh_test_atomics(unsigned long long* total, int* per_block, double* dsum) {
  atomics_kernel<<<dim3(3, 1, 1), dim3(8, 4, 2)>>>(total, per_block, dsum);
  return finish();
}
int spkh_test_wmma_tf32(const float* a, const float* b, float* d, int round) {
  wmma_tf32_kernel<<<1, 32>>>(a, b, d, round);
  return finish();
}
int spkh_test_wmma_fp16(const float* a, const float* b, float* d) {
  wmma_fp16_kernel<<<1, 32>>>(a, b, d);
  return finish();
}
int spkh_test_divergent_warp(unsigned* out) {
  divergent_warp_kernel<<<1, 32>>>(out);
  return finish();
}
int spkh_test_misaligned_wmma(float* d) {
  misaligned_wmma_kernel<<<1, 32>>>(d);
  return finish();
}
int spkh_test_big_smem(float* d, int set_attribute) {
  if (set_attribute) cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024);
  big_smem_kernel<<<1, 32, 64 * 1024>>>(d);
  return finish();
}
float spkh_test_float_to_tf32(float x) { return wmma::__float_to_tf32(x); }

}  // extern "C"
