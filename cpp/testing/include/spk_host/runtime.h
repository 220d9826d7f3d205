// Host execution of CUDA C++ for tests (never part of the wheel): the declarations that stand in
// for the CUDA language extensions and runtime when a .cu file is compiled by g++.
//
// Execution model. A launch runs at once, on the calling host thread: the blocks one after the
// other, and inside a block one cooperative fibre (ucontext) per CUDA thread. A fibre runs until
// it reaches a barrier or a warp collective, then yields; __syncthreads and `bar.sync` are real
// barriers over the block's fibres, and the warp intrinsics (__ballot_sync, __match_any_sync,
// __shfl*_sync, __syncwarp, the WMMA operations) are collectives over the 32 fibres of a warp
// whose last arriving lane computes every participant's result. The order in which runnable
// fibres (and blocks) are resumed is a policy (forward, reverse, seeded random), so a missing
// barrier shows up as a result that depends on it. A barrier that cannot complete (divergent
// __syncthreads, a lane missing from a warp collective, mismatched masks) is reported as a
// launch error instead of hanging.
//
// Memory. cudaMalloc* returns host memory from a tracked heap: every allocation is filled with
// 0xFF bytes (NaN for floating point) and framed by red zones that are checked after every
// launch and on free, so writes just past an allocation and reads of never-written memory show
// up. Streams are accepted and ignored (everything is synchronous, in program order).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- vector types ---------------------------------------------------------------------------

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) double2 {
  double x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};

// ---- runtime types --------------------------------------------------------------------------

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidDevice = 101,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrClockRate = 13,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int major;
  int minor;
  int multiProcessorCount;
  std::size_t sharedMemPerBlockOptin;
};

// ---- runtime API (host_runtime.cpp) ----------------------------------------------------------

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaMemGetInfo(std::size_t* free_b, std::size_t* total_b);
cudaError_t cudaMalloc(void** p, std::size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, std::size_t n);
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t n, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);

namespace spk_host {

// The indices of the running fibre and its block (set by the scheduler on every switch).
extern uint3 g_thread_idx;
extern uint3 g_block_idx;
extern dim3 g_block_dim;
extern dim3 g_grid_dim;

cudaError_t set_func_attribute(const void* fn, cudaFuncAttribute attr, int value);

// A kernel with its arguments bound, run once per CUDA thread.
struct KernelBody {
  virtual void run() = 0;

 protected:
  ~KernelBody() = default;
};

struct LaunchCfg {
  const char* file;
  int line;
  dim3 grid, block;
  std::size_t smem;
  cudaStream_t stream;
};

// Runs the grid (or records a configuration error for cudaGetLastError).
void run_launch(const LaunchCfg& cfg, const void* fn, KernelBody& body);

// Block barrier `id` over `count` threads (__syncthreads is id 0 over the whole block).
void barrier(int id, int count);

// One lane's part in a warp collective: its input, and where its result goes.
struct LaneSlot {
  std::uint64_t value;
  std::int64_t param;
  const void* p[4];
  std::uint64_t result;
};
using WarpCompute = void (*)(LaneSlot* lanes, unsigned mask);
// Blocks until every lane of `mask` arrived at the same collective (`what`, compared by
// address), then the last one runs `compute` over all slots; returns this lane's result.
std::uint64_t warp_collective(const char* what, unsigned mask, const LaneSlot& in, WarpCompute compute);

// Records a harness-detected fault (bad WMMA pointer, ...) and ends the launch.
[[noreturn]] void kernel_fault(const char* what);

unsigned char* dynamic_smem();

// ---- the <<< >>> launch, after the preprocessing step (see tests/cuda_host/build.py) ---------
// `kern<<<g, b, s, st>>>(a...)` is rewritten to
// `kern | ::spk_host::launch_cfg(__FILE__, __LINE__, g, b, s, st) | ::spk_host::launch_args(a...)`.

inline LaunchCfg launch_cfg(const char* file, int line, dim3 grid, dim3 block, std::size_t smem = 0,
                            cudaStream_t stream = nullptr) {
  return LaunchCfg{file, line, grid, block, smem, stream};
}

template <class... P>
struct PendingLaunch {
  void (*fn)(P...);
  LaunchCfg cfg;
};

template <class... P>
PendingLaunch<P...> operator|(void (*fn)(P...), const LaunchCfg& cfg) {
  return PendingLaunch<P...>{fn, cfg};
}

template <class... A>
struct ArgPack {
  std::tuple<A...> values;
};

template <class... A>
ArgPack<std::decay_t<A>...> launch_args(A&&... a) {
  return ArgPack<std::decay_t<A>...>{std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)};
}

template <class... P>
struct BoundKernel final : KernelBody {
  void (*fn)(P...);
  std::tuple<std::decay_t<P>...> params;
  template <class Tuple>
  BoundKernel(void (*f)(P...), Tuple&& t) : fn(f), params(std::make_from_tuple<std::tuple<std::decay_t<P>...>>(t)) {}
  void run() override { std::apply(fn, params); }  // each thread gets its own copy of the parameters
};

template <class... P, class... A>
void operator|(const PendingLaunch<P...>& pending, const ArgPack<A...>& args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  BoundKernel<P...> body(pending.fn, args.values);
  run_launch(pending.cfg, reinterpret_cast<const void*>(pending.fn), body);
}

}  // namespace spk_host

template <class T>
cudaError_t cudaFuncSetAttribute(T* fn, cudaFuncAttribute attr, int value) {
  return spk_host::set_func_attribute(reinterpret_cast<const void*>(fn), attr, value);
}

// ---- language extensions --------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static
#define __align__(n) alignas(n)

#define threadIdx (::spk_host::g_thread_idx)
#define blockIdx (::spk_host::g_block_idx)
#define blockDim (::spk_host::g_block_dim)
#define gridDim (::spk_host::g_grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads() { spk_host::barrier(0, -1); }
inline void __threadfence() {}
inline void __threadfence_block() {}

// The host-side stand-in for PTX `bar.sync id, count;` (see the SPK_HOST_EXEC guard in the .cu files).
inline void spk_host_named_barrier(int id, int count) { spk_host::barrier(id, count); }

template <class T>
inline T min(T a, T b) {
  return b < a ? b : a;
}
template <class T>
inline T max(T a, T b) {
  return a < b ? b : a;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }

// Atomics: fibres switch only at barriers and collectives, so a read-modify-write is atomic.
template <class T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicSub(T* p, T v) {
  const T old = *p;
  *p = old - v;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T cmp, T v) {
  const T old = *p;
  if (old == cmp) *p = v;
  return old;
}

// ---- warp intrinsics ------------------------------------------------------------------------

namespace spk_host {

template <class T>
inline std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp intrinsics take scalars of at most 8 bytes");
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
inline T from_bits(std::uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

inline void compute_sync(LaneSlot*, unsigned) {}
inline void compute_ballot(LaneSlot* s, unsigned mask) {
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && s[l].value) r |= 1u << l;
  for (int l = 0; l < 32; ++l)
    if (mask >> l & 1u) s[l].result = r;  // lanes outside the mask may still be reading theirs
}
inline void compute_match_any(LaneSlot* s, unsigned mask) {
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    unsigned r = 0;
    for (int q = 0; q < 32; ++q)
      if ((mask >> q & 1u) && s[q].value == s[l].value) r |= 1u << q;
    s[l].result = r;
  }
}
// param: source lane (idx), lane mask (xor), delta (down / up); width in p[0] as an integer.
inline void compute_shfl(LaneSlot* s, unsigned mask, int mode) {
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    const int width = static_cast<int>(reinterpret_cast<std::intptr_t>(s[l].p[0]));
    const int base = l - l % width;
    int src;
    const int d = static_cast<int>(s[l].param);
    if (mode == 0)
      src = base + ((d % width) + width) % width;
    else if (mode == 1)
      src = (l ^ d) < base + width ? (l ^ d) : l;
    else if (mode == 2)
      src = l + d < base + width ? l + d : l;
    else
      src = l - d >= base ? l - d : l;
    if (!(mask >> src & 1u)) kernel_fault("__shfl*_sync reads a lane outside its mask (undefined on the GPU)");
    s[l].result = s[src].value;
  }
}
inline void compute_shfl_idx(LaneSlot* s, unsigned m) { compute_shfl(s, m, 0); }
inline void compute_shfl_xor(LaneSlot* s, unsigned m) { compute_shfl(s, m, 1); }
inline void compute_shfl_down(LaneSlot* s, unsigned m) { compute_shfl(s, m, 2); }
inline void compute_shfl_up(LaneSlot* s, unsigned m) { compute_shfl(s, m, 3); }

inline const char kSyncwarp[] = "__syncwarp";
inline const char kBallot[] = "__ballot_sync";
inline const char kMatchAny[] = "__match_any_sync";
inline const char kShfl[] = "__shfl_sync";
inline const char kShflXor[] = "__shfl_xor_sync";
inline const char kShflDown[] = "__shfl_down_sync";
inline const char kShflUp[] = "__shfl_up_sync";

template <class T>
inline T shfl(const char* what, WarpCompute c, unsigned mask, T v, int param, int width) {
  if (width <= 0 || width > 32 || (width & (width - 1))) kernel_fault("__shfl*_sync: `width` must be a power of two <= 32");
  LaneSlot in{to_bits(v), param, {reinterpret_cast<const void*>(static_cast<std::intptr_t>(width)), nullptr, nullptr, nullptr}, 0};
  return from_bits<T>(warp_collective(what, mask, in, c));
}

}  // namespace spk_host

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  spk_host::warp_collective(spk_host::kSyncwarp, mask, spk_host::LaneSlot{}, spk_host::compute_sync);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  spk_host::LaneSlot in{};
  in.value = pred != 0;
  return static_cast<unsigned>(spk_host::warp_collective(spk_host::kBallot, mask, in, spk_host::compute_ballot));
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }
template <class T>
inline unsigned __match_any_sync(unsigned mask, T value) {
  spk_host::LaneSlot in{};
  in.value = spk_host::to_bits(value);
  return static_cast<unsigned>(spk_host::warp_collective(spk_host::kMatchAny, mask, in, spk_host::compute_match_any));
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return spk_host::shfl(spk_host::kShfl, spk_host::compute_shfl_idx, mask, v, src, width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return spk_host::shfl(spk_host::kShflXor, spk_host::compute_shfl_xor, mask, v, lane_mask, width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return spk_host::shfl(spk_host::kShflDown, spk_host::compute_shfl_down, mask, v, static_cast<int>(delta), width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return spk_host::shfl(spk_host::kShflUp, spk_host::compute_shfl_up, mask, v, static_cast<int>(delta), width);
}
